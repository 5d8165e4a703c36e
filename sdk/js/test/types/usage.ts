// Compiled with tsc --noEmit: the seed's example and the typed surface, including what must NOT compile.

import {
  DC1RenterClient,
  InsufficientBalanceError,
  JobFailedError,
  RateLimitError,
  sar,
  type Job,
  type JobStatus,
} from "dc1-renter-sdk";

// The seed's example, as it is written there.
const dc1 = new DC1RenterClient({
  apiKey: "dc1-renter-YOUR_KEY_HERE",
  baseUrl: "https://api.dcp.sa", // optional, defaults to production
});
const providers = await dc1.listProviders();
const provider = providers[0];
const job = await dc1.submitJob({
  providerId: provider.id,
  jobType: "llm_inference",
  params: {
    model: "mistralai/Mistral-7B-Instruct-v0.2",
    prompt: "Explain blockchain to a 10-year-old",
    maxTokens: 256,
  },
  durationMinutes: 2,
});
const result = await dc1.waitForJob(job.id);
console.log(result.result?.output);
console.log(`Cost: ${result.costSar} SAR`);

// Params as the REST API spells them, other job types, options.
await dc1.submitJob({
  jobType: "llm_inference",
  params: { prompt: "hi", max_tokens: 8 },
  durationMinutes: 1,
});
await dc1.submitJob({
  jobType: "image_generation",
  params: { prompt: "a camel", width: 512, guidanceScale: 7 },
  durationMinutes: 3,
  gpuRequirements: { minVramGb: 16 },
  pricingClass: "economy",
  idempotencyKey: "order-42",
});
await dc1.submitJob({ jobType: "custom_container", params: { script: "print(1)" }, durationMinutes: 5 });
// @ts-expect-error an LLM job needs a prompt
await dc1.submitJob({ jobType: "llm_inference", params: { maxTokens: 5 }, durationMinutes: 1 });
await dc1.submitJob({
  jobType: "image_generation",
  // @ts-expect-error maxTokens is not an image parameter
  params: { prompt: "x", maxTokens: 5 },
  durationMinutes: 1,
});
// @ts-expect-error durationMinutes is required
await dc1.submitJob({ jobType: "vllm_serve", params: { model: "m" } });

// Amounts: integer halala, SAR as exact strings.
const halala: number = result.actualCostHalala + result.billing.refundedHalala;
const inSar: string = sar(halala);
// @ts-expect-error SAR is a string, never a float
const float: number = result.costSar;

// Output before the job ends, narrowed on `ready`.
const output = await dc1.getOutput(job.id);
if (output.ready) {
  const text: string | null = output.text;
  const image: string | undefined = output.result.image_base64;
} else {
  const position: number | null = output.queuePosition;
  // @ts-expect-error no result while it runs
  output.result.output;
}

// History pages, balance, profile.
for await (const past of dc1.history({ pageSize: 10, status: "completed" })) {
  const status: JobStatus = past.status;
}
const page = await dc1.historyPage({ limit: 2, offset: 2 });
const jobs: Job[] = page.jobs;
const balance = await dc1.balance();
const available: string = balance.balanceSar;
const me = await dc1.me();
const totalJobs: number = me.renter.totalJobs;

// The error tree.
try {
  await dc1.cancelJob(job.id);
} catch (error) {
  if (error instanceof RateLimitError) console.log(error.retryAfter.toFixed(1), error.status, error.code);
  if (error instanceof InsufficientBalanceError) console.log(error.requiredHalala ?? 0);
  if (error instanceof JobFailedError) console.log(error.refundedHalala, error.jobStatus);
}

// A fetch of one's own (the browser's or Node's), and a sleep.
new DC1RenterClient({ fetch, sleep: async () => {}, maxRetries: 0, timeoutMs: 1000 });
