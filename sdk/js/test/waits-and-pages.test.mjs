// Waits that keep their deadline, listings that follow the API's cursors, and options refused up front,
// against a scripted stub (the live suite cannot make DCP hang or change a listing between two pages).

import assert from "node:assert/strict";
import { after, test } from "node:test";

import { DC1Error, DC1RenterClient, TimeoutError } from "dc1-renter-sdk";
import { stubDcp } from "./support/stub-dcp.mjs";

const stubs = [];
after(() => Promise.all(stubs.map((stub) => stub.close())));

async function clientFor(script, options = {}) {
  const stub = await stubDcp(script);
  stubs.push(stub);
  const client = new DC1RenterClient({ apiKey: "dc1-renter-x", baseUrl: stub.url, ...options });
  return { client, stub };
}

const job = (id, status = "pending", jobType = "llm_inference") => ({
  job_id: id,
  status,
  job_type: jobType,
  cost_halala: 15,
});
const answer = (body, status = 200) => ({ status, body });

test("history follows the next_before cursor, so jobs changing meanwhile are neither skipped nor repeated", async () => {
  const { client, stub } = await clientFor({
    "/api/jobs/history": [
      answer({ jobs: [job("job-3"), job("job-2")], total: 3, limit: 2, offset: 0, next_before: "job-2" }),
      answer({ jobs: [job("job-1")], total: 1, limit: 2, offset: 0, next_before: null }),
    ],
  });
  const seen = [];
  for await (const found of client.history({ status: "pending", pageSize: 2 })) seen.push(found.id);
  assert.deepEqual(seen, ["job-3", "job-2", "job-1"]);
  assert.deepEqual(
    stub.requests.map((request) => request.query.before),
    [undefined, "job-2"],
  );
});

test("listProviders follows the next_after cursor to the last page", async () => {
  const provider = (id) => ({ id, name: `node ${id}`, gpu_model: "RTX 4090", vram_gb: 24, is_live: true });
  const { client, stub } = await clientFor({
    "/api/renters/available-providers": [
      answer({ providers: [provider(1), provider(2)], total: 3, next_after: 2 }),
      answer({ providers: [provider(3)], total: 3, next_after: null }),
    ],
  });
  assert.deepEqual(
    (await client.listProviders()).map((found) => found.id),
    [1, 2, 3],
  );
  assert.deepEqual(
    stub.requests.map((request) => request.query.after),
    [undefined, "2"],
  );
});

test("waitForJob polls until its deadline, even when its interval is longer", async () => {
  const { client, stub } = await clientFor({ "/api/jobs/job-1": [answer({ job: job("job-1") })] });
  const started = Date.now();
  await assert.rejects(client.waitForJob("job-1", { timeoutMs: 300, intervalMs: 60_000 }), TimeoutError);
  assert.ok(Date.now() - started >= 250, "it gave up before its deadline");
  assert.equal(stub.requests.length, 2); // at the start and at the deadline
});

test("waitForJob ends at its deadline when the server never answers, whatever the request timeout", async () => {
  const { client } = await clientFor({ "/api/jobs/job-1": ["hang"] }, { timeoutMs: 5_000, maxRetries: 2 });
  const started = Date.now();
  await assert.rejects(client.waitForJob("job-1", { timeoutMs: 300 }), TimeoutError);
  assert.ok(Date.now() - started < 2_000, "a request outlasted the wait's deadline");
});

test("waitForEndpoint returns a vllm_serve job's endpoint as soon as it serves", async () => {
  const serving = {
    job_id: "job-1",
    status: "running",
    type: "endpoint",
    result: { endpoint_url: "http://gpu.test/v1" },
    billing: { quoted_halala: 15, actual_cost_halala: 0, refunded_halala: 0 },
    actual_cost_halala: 0,
  };
  const { client } = await clientFor({
    "/api/jobs/job-1": [answer({ job: job("job-1", "running", "vllm_serve") })],
    "/api/jobs/job-1/output": [answer({ job_id: "job-1", status: "running" }, 202), answer(serving)],
    "/api/jobs/job-2": [answer({ job: job("job-2") })],
  });
  assert.equal(await client.waitForEndpoint("job-1", { intervalMs: 10 }), "http://gpu.test/v1");
  await assert.rejects(client.waitForEndpoint("job-2"), /only vllm_serve jobs have an endpoint/);
});

test("options that cannot work are refused when the client is made, not retried as an outage", async () => {
  assert.throws(() => new DC1RenterClient({ baseUrl: "127.0.0.1:8083" }), DC1Error);
  assert.throws(() => new DC1RenterClient({ apiKey: "dc1-renter-x\n" }), /apiKey/);
  assert.throws(() => new DC1RenterClient({ timeoutMs: 0 }), /timeoutMs/);
  const balance = {
    balance_halala: 1,
    balance_sar: "0.01",
    held_halala: 0,
    held_sar: "0.00",
    total_halala: 1,
  };
  const { client } = await clientFor({ "/api/renters/balance": [answer(balance)] }, { timeoutMs: Infinity });
  assert.equal((await client.balance()).balanceSar, "0.01"); // no timer at all, not one of 1 ms
});
