// Retry rules against a scripted stub (the live suite cannot make DCP answer 429 or 503 on cue).

import assert from "node:assert/strict";
import { after, test } from "node:test";

import {
  APIConnectionError,
  DC1RenterClient,
  InsufficientBalanceError,
  ProviderUnavailableError,
  RateLimitError,
  ValidationError,
} from "dc1-renter-sdk";
import { recordingSleep, stubDcp } from "./support/stub-dcp.mjs";

const BALANCE = {
  balance_halala: 700,
  balance_sar: "7.00",
  held_halala: 0,
  held_sar: "0.00",
  total_halala: 700,
};
const JOB = { job_id: "job-1", status: "pending", job_type: "llm_inference", cost_halala: 15 };
const stubs = [];
after(() => Promise.all(stubs.map((stub) => stub.close())));

async function clientFor(script, options = {}) {
  const stub = await stubDcp(script);
  stubs.push(stub);
  const { waits, sleep } = recordingSleep();
  const client = new DC1RenterClient({ apiKey: "dc1-renter-x", baseUrl: stub.url, sleep, ...options });
  return { client, stub, waits };
}

function limited(seconds, envelope = true) {
  const error = envelope
    ? { message: "Rate limit exceeded.", code: "rate_limit_exceeded", retry_after_seconds: seconds }
    : "Rate limit exceeded.";
  return { status: 429, body: { error, retry_after_seconds: seconds }, headers: { "retry-after": "9" } };
}

test("429 is retried after the retry_after_seconds the server advises", async () => {
  const { client, stub, waits } = await clientFor({
    "/api/renters/balance": [limited(0.25), limited(0.5), { status: 200, body: BALANCE }],
  });
  const balance = await client.balance();
  assert.equal(balance.balanceSar, "7.00");
  assert.equal(stub.requests.length, 3);
  assert.deepEqual(waits, [250, 500]);
});

test("without retry_after_seconds in the body, the Retry-After header is honoured", async () => {
  const plain = { status: 429, body: { error: "Too many requests" }, headers: { "retry-after": "2" } };
  const { client, waits } = await clientFor({
    "/api/renters/balance": [plain, { status: 200, body: BALANCE }],
  });
  await client.balance();
  assert.deepEqual(waits, [2000]);
});

test("when retries run out, RateLimitError carries retryAfter and the code", async () => {
  const { client, stub } = await clientFor({ "/api/renters/balance": [limited(0.25)] }, { maxRetries: 0 });
  await assert.rejects(client.balance(), (error) => {
    assert.ok(error instanceof RateLimitError);
    assert.equal(error.retryAfter, 0.25);
    assert.equal(error.code, "rate_limit_exceeded");
    assert.equal(error.status, 429);
    return true;
  });
  assert.equal(stub.requests.length, 1);
});

test("a retried submit carries the same idempotency key, so it never creates a second job", async () => {
  const busy = { status: 503, body: { error: { message: "No capacity", code: "no_capacity_available" } } };
  const { client, stub, waits } = await clientFor({
    "/api/jobs/submit": [busy, { status: 201, body: { success: true, job: JOB } }],
  });
  const job = await client.submitJob({
    jobType: "llm_inference",
    params: { prompt: "hi", maxTokens: 8 },
    durationMinutes: 1,
  });
  assert.equal(job.id, "job-1");
  const [first, second] = stub.requests;
  assert.ok(first.headers["idempotency-key"].startsWith("dc1-sdk-js-"));
  assert.equal(second.headers["idempotency-key"], first.headers["idempotency-key"]);
  assert.deepEqual(first.body, {
    job_type: "llm_inference",
    duration_minutes: 1,
    params: { prompt: "hi", max_tokens: 8 },
  });
  assert.equal(waits.length, 1);
  assert.ok(waits[0] >= 250 && waits[0] <= 500, `backoff ${waits[0]} ms`);
});

test("refusals are never retried: 400, 402, and a 500 with no retryable code", async () => {
  const { client, stub, waits } = await clientFor({
    "/api/jobs/submit": [
      { status: 400, body: { error: "Invalid params.steps: Extra inputs are not permitted" } },
    ],
    "/api/renters/balance": [{ status: 402, body: { error: "Insufficient balance", required_halala: 15 } }],
    "/api/renters/me": [{ status: 500, body: { error: "internal error" } }],
  });
  const submit = client.submitJob({
    jobType: "llm_inference",
    params: { prompt: "hi", steps: 3 },
    durationMinutes: 1,
  });
  await assert.rejects(submit, ValidationError);
  await assert.rejects(
    client.balance(),
    (error) => error instanceof InsufficientBalanceError && error.requiredHalala === 15,
  );
  await assert.rejects(client.me(), ProviderUnavailableError);
  assert.equal(stub.requests.length, 3);
  assert.deepEqual(waits, []);
});

test("an unreachable server is retried, a cancel too (it was never sent), then reported", async () => {
  const closed = await stubDcp({});
  await closed.close();
  const { waits, sleep } = recordingSleep();
  const offline = new DC1RenterClient({ apiKey: "dc1-renter-x", baseUrl: closed.url, sleep });
  await assert.rejects(
    offline.balance(),
    (error) => error instanceof APIConnectionError && error.status === 0,
  );
  await assert.rejects(
    offline.cancelJob("job-1"),
    (error) => error instanceof APIConnectionError && !error.sent,
  );
  assert.deepEqual(waits, [1000, 1000, 1000, 1000]);
});

test("a request with no answer within timeoutMs fails as APIConnectionError", async () => {
  const { client } = await clientFor({ "/api/renters/balance": ["hang"] }, { timeoutMs: 100, maxRetries: 0 });
  await assert.rejects(client.balance(), /no answer within 100 ms/);
});

test("waitForJob backs off exponentially on 429, then polls at its interval until the job ends", async () => {
  const running = { status: 200, body: { success: true, job: { ...JOB, status: "running" } } };
  const completed = { status: 200, body: { success: true, job: { ...JOB, status: "completed" } } };
  const output = {
    job_id: "job-1",
    status: "completed",
    type: "text",
    result: { response: "Riyadh" },
    response: "Riyadh",
    tokens_generated: 3,
    execution_time_ms: 900,
    billing: { quoted_halala: 15, actual_cost_halala: 5, refunded_halala: 10 },
    actual_cost_halala: 5,
  };
  const { client, waits } = await clientFor(
    {
      "/api/jobs/job-1": [limited(0.01), limited(0.01), running, completed],
      "/api/jobs/job-1/output": [limited(0.01), { status: 200, body: output }],
    },
    { maxRetries: 0 },
  );
  const result = await client.waitForJob("job-1", { intervalMs: 100 });
  assert.deepEqual(waits, [200, 400, 100, 200]); // the output's own 429 is waited out too
  assert.equal(result.result?.output, "Riyadh");
  assert.equal(result.costSar, "0.05");
});

test("a long job's 429s back off from the 15 s it is polled at, not from 5 s", async () => {
  const running = {
    status: 200,
    body: { success: true, job: { ...JOB, job_type: "vllm_serve", status: "running" } },
  };
  const cancelled = { status: 200, body: { success: true, job: { ...JOB, status: "cancelled" } } };
  const output = { status: 410, body: { error: "Job cancelled", status: "cancelled" } };
  const { client, waits } = await clientFor(
    { "/api/jobs/job-1": [running, limited(0.01), cancelled], "/api/jobs/job-1/output": [output] },
    { maxRetries: 0 },
  );
  await assert.rejects(client.waitForJob("job-1"), /cancelled/);
  assert.deepEqual(waits, [15_000, 30_000]);
});

test("a cancel whose answer was lost, or that met a gateway's 502, is not sent again", async () => {
  const gateway = { status: 502, body: { error: "Bad Gateway" } };
  const { client, stub, waits } = await clientFor(
    { "/api/jobs/job-1/cancel": ["hang"], "/api/jobs/job-2/cancel": [gateway] },
    { timeoutMs: 100 },
  );
  // Asked again, a cancel that was made answers 409 "already cancelled": the caller is told the truth instead.
  await assert.rejects(
    client.cancelJob("job-1"),
    (error) => error instanceof APIConnectionError && error.sent,
  );
  await assert.rejects(client.cancelJob("job-2"), ProviderUnavailableError);
  assert.equal(stub.requests.length, 2);
  assert.deepEqual(waits, []);
});
