// The SDK against a real DCP server. tests/sdk/test_js_sdk.py starts one, plays the provider, and sets:
//   DCP_BASE_URL; DCP_RENTER_KEY, DCP_HISTORY_RENTER_KEY and DCP_EXAMPLE_RENTER_KEY (funded, one per use);
//   DCP_POOR_RENTER_KEY (1 halala); DCP_PROVIDER_ID (24 GB, served: completes jobs after 20 s of server time,
//   fails a prompt that says "please fail"); DCP_IDLE_PROVIDER_ID (8 GB, online, never claims a job).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, test } from "node:test";

import {
  AuthenticationError,
  DC1RenterClient,
  InsufficientBalanceError,
  JobFailedError,
  NotFoundError,
  ProviderUnavailableError,
  TimeoutError,
  ValidationError,
} from "dc1-renter-sdk";
import { FIELDS } from "../src/models.js";
import { declaredFields } from "./support/declarations.mjs";
import { everyClientCall } from "./support/recorded-calls.mjs";

const env = process.env;
const baseUrl = env.DCP_BASE_URL;
const servedId = Number(env.DCP_PROVIDER_ID);
const idleId = Number(env.DCP_IDLE_PROVIDER_ID);
const client = (apiKey = env.DCP_RENTER_KEY) => new DC1RenterClient({ apiKey, baseUrl });
const llm = (prompt, providerId = idleId) => ({
  providerId,
  jobType: "llm_inference",
  params: { prompt, maxTokens: 32 },
  durationMinutes: 1,
});

function assertShape(object, name) {
  assert.deepEqual(
    Object.keys(object).sort(),
    declaredFields(name).sort(),
    `${name} differs from index.d.ts`,
  );
}

describe("against a live DCP server", { skip: baseUrl ? false : "DCP_BASE_URL is not set" }, () => {
  test("listProviders: the live providers, camelCase, as declared", async () => {
    const providers = await client().listProviders();
    assert.deepEqual(providers.map((p) => p.id).sort(), [servedId, idleId].sort());
    const provider = providers.find((p) => p.id === servedId);
    assertShape(provider, "Provider");
    assert.deepEqual([provider.isLive, provider.gpuModel, provider.vramGb], [true, "RTX 4090", 24]);
    assert.equal(provider.pricePerMinuteHalala.llm_inference, 15);
    const ids = (found) => found.map((p) => p.id);
    assert.deepEqual(ids(await client().listProviders({ minVramGb: 16 })), [servedId]);
    assert.deepEqual(ids(await client().listProviders({ gpuModel: "3070" })), [idleId]);
  });

  test("the seed's example: submit, waitForJob, result.result?.output and costSar", async () => {
    const dc1 = client();
    const before = await dc1.balance();
    assertShape(before, "Balance");
    const job = await dc1.submitJob({
      providerId: servedId,
      jobType: "llm_inference",
      params: { model: "gemma3-270m", prompt: "What is the capital of Saudi Arabia?", maxTokens: 32 },
      durationMinutes: 2,
    });
    assertShape(job, "Job");
    assert.equal(job.costHalala, 30);
    assert.equal(job.costSar, "0.30");
    assert.equal(job.raw.job_id, job.id);
    const result = await dc1.waitForJob(job.id, { timeoutMs: 30_000, intervalMs: 50 });
    assertShape(result, "JobOutput");
    assert.equal(result.result?.output, "Riyadh");
    assert.equal(result.text, "Riyadh");
    assert.equal(result.costSar, "0.05"); // 20 s of a 15 halala/minute GPU
    assert.deepEqual(result.billing, { quotedHalala: 30, actualCostHalala: 5, refundedHalala: 25 });
    const after = await dc1.balance();
    assert.equal(after.balanceHalala, before.balanceHalala - 5);
    const done = await dc1.getJob(job.id);
    assert.equal(done.status, "completed");
    assert.equal(done.actualCostSar, "0.05");
    const me = await dc1.me();
    assertShape(me.renter, "Renter");
    assert.ok(me.recentJobs.some((recent) => recent.id === job.id));
  });

  test("a failed job: waitForJob and getOutput throw JobFailedError (the 410), refunded", async () => {
    const dc1 = client();
    const job = await dc1.submitJob(llm("please fail", servedId));
    await assert.rejects(dc1.waitForJob(job.id, { timeoutMs: 30_000, intervalMs: 50 }), (error) => {
      assert.ok(error instanceof JobFailedError);
      assert.equal(error.status, 410);
      assert.equal(error.message, "CUDA out of memory");
      return true;
    });
    await assert.rejects(dc1.getOutput(job.id), (error) => {
      assert.ok(error instanceof JobFailedError);
      assert.equal(error.jobStatus, "failed");
      assert.equal(error.refundedHalala, job.costHalala);
      return true;
    });
  });

  test("a submit no online provider can take now: worth trying later, not a bad request", async () => {
    const job = { ...llm("too big", null), gpuRequirements: { minVramGb: 80 } };
    await assert.rejects(client().submitJob(job), (error) => {
      assert.ok(error instanceof ProviderUnavailableError);
      assert.deepEqual([error.status, error.code], [409, "no_capacity_available"]);
      return true;
    });
  });

  test("getOutput while the job waits: ready false, no result", async () => {
    const dc1 = client();
    const job = await dc1.submitJob(llm("still queued"));
    const output = await dc1.getOutput(job.id);
    assertShape(output, "PendingOutput");
    assert.equal(output.ready, false);
    assert.equal(output.status, "pending");
    assert.equal(output.result, null);
    await dc1.cancelJob(job.id);
  });

  test("cancelJob: refunded in full, its output a 410, a second cancel refused", async () => {
    const dc1 = client();
    const job = await dc1.submitJob(llm("cancel me"));
    const cancelled = await dc1.cancelJob(job.id);
    assert.equal(cancelled.status, "cancelled");
    assert.equal(cancelled.done, true);
    await assert.rejects(dc1.getOutput(job.id), (error) => error.refundedHalala === job.costHalala);
    await assert.rejects(dc1.waitForJob(job.id, { timeoutMs: 5_000 }), JobFailedError);
    await assert.rejects(
      dc1.cancelJob(job.id),
      (error) => error instanceof ValidationError && error.status === 409,
    );
  });

  test("the same idempotency key submits one job", async () => {
    const dc1 = client();
    const first = await dc1.submitJob({ ...llm("once"), idempotencyKey: "js-sdk-once" });
    const again = await dc1.submitJob({ ...llm("once"), idempotencyKey: "js-sdk-once" });
    assert.equal(again.id, first.id);
    await dc1.cancelJob(first.id);
  });

  test("waitForJob stops at its deadline with TimeoutError", async () => {
    const dc1 = client();
    const job = await dc1.submitJob(llm("never picked up"));
    await assert.rejects(dc1.waitForJob(job.id, { timeoutMs: 300, intervalMs: 100 }), TimeoutError);
    await dc1.cancelJob(job.id);
  });

  test("history pages through every job, newest first, and filters", async () => {
    const dc1 = client(env.DCP_HISTORY_RENTER_KEY);
    const submitted = [];
    for (const n of [1, 2, 3, 4, 5]) submitted.push((await dc1.submitJob(llm(`job ${n}`))).id);
    const seen = [];
    for await (const job of dc1.history({ pageSize: 2 })) seen.push(job.id);
    assert.deepEqual(seen, submitted.reverse());
    const page = await dc1.historyPage({ limit: 2, offset: 4 });
    assert.deepEqual([page.jobs.length, page.total, page.limit, page.offset], [1, 5, 2, 4]);
    await dc1.cancelJob(seen[0]);
    const pending = [];
    for await (const job of dc1.history({ status: "pending", jobType: "llm_inference" }))
      pending.push(job.id);
    assert.deepEqual(pending, seen.slice(1));
  });

  test("errors: 402, 401, 404 and 400 raise their classes", async () => {
    await assert.rejects(client(env.DCP_POOR_RENTER_KEY).submitJob(llm("too dear")), (error) => {
      assert.ok(error instanceof InsufficientBalanceError);
      assert.deepEqual([error.status, error.requiredHalala, error.availableHalala], [402, 15, 1]);
      return true;
    });
    await assert.rejects(client("dc1-renter-nope").balance(), (error) => {
      assert.ok(error instanceof AuthenticationError);
      assert.equal(error.status, 401);
      return true;
    });
    await assert.rejects(client().getJob("job-missing"), NotFoundError);
    const typo = { ...llm("hi"), params: { prompt: "hi", steps: 3 } };
    await assert.rejects(
      client().submitJob(typo),
      (error) => error instanceof ValidationError && /steps/.test(error.message),
    );
  });

  test("contract: every API field the SDK reads is in the server's OpenAPI spec", async () => {
    const spec = await (await fetch(`${baseUrl}/docs/openapi.json`)).json();
    const resolve = (schema) =>
      schema.$ref ? resolve(spec.components.schemas[schema.$ref.split("/").pop()]) : schema;
    const answer = (path, method, status) =>
      resolve(spec.paths[path][method].responses[status].content["application/json"].schema);
    const property = (schema, name) => resolve(schema.properties[name]);
    const output = answer("/api/jobs/{job_id}/output", "get", "200");
    const read = {
      Job: property(answer("/api/jobs/{job_id}", "get", "200"), "job"),
      Provider: resolve(
        property(answer("/api/renters/available-providers", "get", "200"), "providers").items,
      ),
      Balance: answer("/api/renters/balance", "get", "200"),
      Renter: property(answer("/api/renters/me", "get", "200"), "renter"),
      JobOutput: output,
      Billing: property(output, "billing"),
      JobPendingOutput: answer("/api/jobs/{job_id}/output", "get", "202"),
    };
    for (const [model, fields] of Object.entries(FIELDS)) {
      const known = Object.keys(read[model].properties);
      const missing = Object.values(fields).filter((field) => !known.includes(field));
      assert.deepEqual(missing, [], `${model}: the spec lacks ${missing}`);
    }
    const lists = ["/api/jobs/history", "/api/renters/available-providers"].map((path) =>
      answer(path, "get", "200"),
    );
    for (const list of lists)
      assert.ok(["total", "limit", "offset"].every((name) => name in list.properties));
    assert.ok("recent_jobs" in answer("/api/renters/me", "get", "200").properties);
    assert.ok("job" in answer("/api/jobs/submit", "post", "201").properties);
    const gone = answer("/api/jobs/{job_id}/output", "get", "410");
    assert.ok(["error", "status", "billing"].every((name) => name in gone.properties));
  });

  test("contract: every request each method makes is a path, method and parameters of the spec", async () => {
    const spec = await (await fetch(`${baseUrl}/docs/openapi.json`)).json();
    const templates = Object.keys(spec.paths).map((template) => {
      const pattern = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^/]+?\}/g, "[^/]+");
      return { template, pattern: new RegExp(`^${pattern}$`) };
    });
    const operation = ({ method, path }) => {
      const matching = templates.filter(({ pattern }) => pattern.test(path)).map(({ template }) => template);
      const template = matching.find((found) => !found.includes("{")) ?? matching[0];
      assert.ok(template, `${method} ${path}: no such path in the spec`);
      const found = spec.paths[template][method.toLowerCase()];
      assert.ok(found, `${method} ${path}: the spec's ${template} has no ${method}`);
      return found;
    };
    const calls = await everyClientCall();
    assert.ok(calls.some(({ name }) => name === "cancelJob"));
    for (const { name, requests } of calls) {
      assert.ok(requests.length > 0, `${name} made no request`);
      for (const request of requests) {
        const found = operation(request);
        const query = (found.parameters ?? []).filter((p) => p.in === "query").map((p) => p.name);
        const unknown = request.query.filter((parameter) => !query.includes(parameter));
        assert.deepEqual(unknown, [], `${name}: ${request.path} takes no ${unknown}`);
        if (request.body.length === 0) continue;
        const schema = found.requestBody.content["application/json"].schema;
        const fields = Object.keys(spec.components.schemas[schema.$ref.split("/").pop()].properties);
        const extra = request.body.filter((field) => !fields.includes(field));
        assert.deepEqual(extra, [], `${name}: the spec's body has no ${extra}`);
      }
    }
  });

  test("the README's examples run end to end, as the README shows them", async () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    const run = promisify(execFile);
    const cwd = mkdtempSync(join(tmpdir(), "dc1-sdk-example-"));
    const exampleEnv = { ...env, DC1_API_KEY: env.DCP_EXAMPLE_RENTER_KEY, DC1_BASE_URL: baseUrl };
    const [quickstart, image] = await Promise.all(
      ["quickstart", "image"].map((name) => {
        const file = new URL(`../examples/${name}.mjs`, import.meta.url);
        assert.ok(
          readme.includes(readFileSync(file, "utf8")),
          `README.md lacks examples/${name}.mjs as it is`,
        );
        return run(process.execPath, [fileURLToPath(file)], { cwd, env: exampleEnv, timeout: 60_000 });
      }),
    );
    assert.match(quickstart.stdout, /^Balance: \d+\.\d\d SAR$/m);
    assert.match(quickstart.stdout, /^Response: Riyadh\nCost: 0\.05 SAR$/m);
    assert.match(image.stdout, /^Saved output\.png \(cost: 0\.07 SAR\)$/m);
    const png = readFileSync(join(cwd, "output.png"));
    assert.deepEqual([...png.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  });
});
