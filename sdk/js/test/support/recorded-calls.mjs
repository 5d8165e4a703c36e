// Every request each client method makes, recorded through a fetch that refuses them all (so none goes out).

import { DC1RenterClient, ValidationError } from "dc1-renter-sdk";

// Arguments that reach every option a method sends; a method not named here is called with a job id.
const ARGUMENTS = {
  submitJob: {
    jobType: "llm_inference",
    params: { prompt: "hi", maxTokens: 8 },
    durationMinutes: 1,
    providerId: 1,
    maxDurationSeconds: 60,
    pricingClass: "standard",
    priority: 5,
    gpuRequirements: { minVramGb: 16, gpuModel: "RTX 4090" },
    idempotencyKey: "contract",
  },
  listProviders: { liveOnly: true, minVramGb: 16, gpuModel: "4090" },
  historyPage: { status: "pending", jobType: "llm_inference", limit: 1, offset: 0, before: "job-1" },
  history: { status: "pending", jobType: "llm_inference", pageSize: 1 },
};

/** `[{name, requests: [{method, path, query, body}]}]` for every method of DC1RenterClient. */
export async function everyClientCall() {
  const names = Object.getOwnPropertyNames(DC1RenterClient.prototype).filter((n) => n !== "constructor");
  const calls = [];
  for (const name of names) {
    const requests = [];
    const fetch = async (url, init) => {
      const { pathname, searchParams } = new URL(url);
      const body = init.body ? Object.keys(JSON.parse(init.body)) : [];
      requests.push({ method: init.method, path: pathname, query: [...searchParams.keys()], body });
      const refusal = JSON.stringify({ error: "recorded" });
      return new Response(refusal, { status: 400, headers: { "content-type": "application/json" } });
    };
    const client = new DC1RenterClient({ apiKey: "dc1-renter-x", baseUrl: "http://dcp.invalid", fetch });
    const started = client[name](ARGUMENTS[name] ?? "job-1");
    try {
      await (typeof started.next === "function" ? started.next() : started);
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
    }
    calls.push({ name, requests });
  }
  return calls;
}
