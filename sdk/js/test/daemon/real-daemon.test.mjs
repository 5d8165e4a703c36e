// One job on a real provider daemon running the small model on CPU. tests/sdk/test_js_sdk.py starts the server
// and the daemon, and sets DCP_BASE_URL, DCP_RENTER_KEY (funded) and DCP_PROVIDER_ID (the daemon's provider).

import assert from "node:assert/strict";
import { test } from "node:test";

import { DC1RenterClient } from "dc1-renter-sdk";

const { DCP_BASE_URL: baseUrl, DCP_RENTER_KEY: apiKey, DCP_PROVIDER_ID: providerId } = process.env;
const skip = baseUrl ? false : "DCP_BASE_URL is not set";

test(
  "a real daemon runs an llm_inference job: submitJob, waitForJob, result.result.output",
  { skip },
  async () => {
    const dc1 = new DC1RenterClient({ apiKey, baseUrl });
    const job = await dc1.submitJob({
      providerId: Number(providerId),
      jobType: "llm_inference",
      params: { prompt: "The capital of Saudi Arabia is", maxTokens: 16 },
      durationMinutes: 2,
    });
    const result = await dc1.waitForJob(job.id, { timeoutMs: 120_000, intervalMs: 200 });
    assert.equal(result.status, "completed");
    assert.ok(result.result.output.trim().length > 0, "the model wrote nothing");
    const { actualCostHalala, refundedHalala } = result.billing;
    assert.equal(actualCostHalala + refundedHalala, job.costHalala);
    assert.equal((await dc1.balance()).heldHalala, 0);
  },
);
