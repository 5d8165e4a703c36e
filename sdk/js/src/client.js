// The renter's client: `new DC1RenterClient({ apiKey, baseUrl })`.

import { JobFailedError, RateLimitError, TimeoutError } from "./errors.js";
import { snakeKeys, toBalance, toJob, toOutput, toPendingOutput, toProvider, toRenter } from "./models.js";
import { DEFAULT_BASE_URL, Transport, sleep } from "./transport.js";

const LONG_JOB_TYPES = new Set(["vllm_serve", "custom_container"]);
const PROVIDER_PAGE = 200;

/** The seed's polling guidance: 5 s for short jobs, 15 s for long ones (vllm_serve start-up, scripts). */
function pollIntervalMs(jobType) {
  return LONG_JOB_TYPES.has(jobType) ? 15_000 : 5_000;
}

/** Renter access to DCP; retries only what the API says is retryable, and never submits a job twice. */
export class DC1RenterClient {
  constructor({
    apiKey,
    baseUrl = DEFAULT_BASE_URL,
    maxRetries = 2,
    timeoutMs = 30_000,
    fetch,
    sleep: wait = sleep,
  } = {}) {
    this.transport = new Transport({ apiKey, baseUrl, maxRetries, timeoutMs, fetch, sleep: wait });
  }

  /** The renter's profile and its five most recent jobs. */
  async me() {
    const { body } = await this.transport.request("GET", "/api/renters/me");
    return { renter: toRenter(body.renter), recentJobs: body.recent_jobs.map(toJob) };
  }

  async balance() {
    const { body } = await this.transport.request("GET", "/api/renters/balance");
    return toBalance(body);
  }

  /** Providers on the marketplace (only live ones unless `liveOnly: false`), every page. */
  async listProviders({ liveOnly = true, minVramGb, gpuModel } = {}) {
    const providers = [];
    for (let offset = 0; ; offset += PROVIDER_PAGE) {
      const query = {
        live_only: liveOnly,
        min_vram_gb: minVramGb,
        gpu_model: gpuModel,
        limit: PROVIDER_PAGE,
        offset,
      };
      const { body } = await this.transport.request("GET", "/api/renters/available-providers", { query });
      providers.push(...body.providers.map(toProvider));
      if (body.providers.length === 0 || providers.length >= body.total) return providers;
    }
  }

  /** Submit a job; its cost is held until it ends. Retries carry one idempotency key: one job at most. */
  async submitJob({
    jobType,
    params,
    durationMinutes,
    providerId,
    maxDurationSeconds,
    pricingClass,
    priority,
    gpuRequirements,
    idempotencyKey = newIdempotencyKey(),
  }) {
    const json = {
      job_type: jobType,
      duration_minutes: durationMinutes,
      params: snakeKeys(params),
      provider_id: providerId,
      max_duration_seconds: maxDurationSeconds,
      pricing_class: pricingClass,
      priority,
      gpu_requirements: gpuRequirements && snakeKeys(gpuRequirements),
    };
    const headers = { "idempotency-key": idempotencyKey };
    const { body } = await this.transport.request("POST", "/api/jobs/submit", { json, headers });
    return toJob(body.job);
  }

  async getJob(jobId) {
    const { body } = await this.transport.request("GET", jobPath(jobId));
    return toJob(body.job);
  }

  /** The output (`ready: false` while the job runs); throws JobFailedError for a failed or cancelled job. */
  async getOutput(jobId) {
    const { status, body } = await this.transport.request("GET", `${jobPath(jobId)}/output`, {
      allow: [202],
    });
    return status === 202 ? toPendingOutput(body) : toOutput(body);
  }

  /** Cancel: refunded in full before it runs, billed for the time it ran after. */
  async cancelJob(jobId) {
    const { body } = await this.transport.request("POST", `${jobPath(jobId)}/cancel`);
    return toJob(body.job);
  }

  /** One page of the renter's jobs, newest first. */
  async historyPage({ status, jobType, limit = 50, offset = 0 } = {}) {
    const query = { status, job_type: jobType, limit, offset };
    const { body } = await this.transport.request("GET", "/api/jobs/history", { query });
    return { jobs: body.jobs.map(toJob), total: body.total, limit: body.limit, offset: body.offset };
  }

  /** Every job of the renter, newest first, fetching pages as the loop asks: `for await (… of …)`. */
  async *history({ status, jobType, pageSize = 50 } = {}) {
    for (let offset = 0; ;) {
      const page = await this.historyPage({ status, jobType, limit: pageSize, offset });
      yield* page.jobs;
      offset += page.jobs.length;
      if (page.jobs.length === 0 || offset >= page.total) return;
    }
  }

  /**
   * Poll until the job ends and return its output; 5 s apart (15 s for long jobs) unless `intervalMs` says,
   * backing off exponentially on 429. Throws JobFailedError if it failed or was cancelled, TimeoutError at
   * the deadline.
   */
  async waitForJob(jobId, { timeoutMs = 600_000, intervalMs } = {}) {
    const deadline = Date.now() + timeoutMs;
    const pause = async (ms) => {
      if (Date.now() + ms > deadline) {
        throw new TimeoutError(`Job ${jobId} did not finish within ${timeoutMs} ms`);
      }
      await this.transport.sleep(ms);
    };
    for (let limited = 0; ;) {
      let job;
      try {
        job = await this.getJob(jobId);
      } catch (error) {
        if (!(error instanceof RateLimitError)) throw error;
        limited += 1;
        await pause(Math.max(error.retryAfter * 1000, (intervalMs ?? 5_000) * 2 ** limited));
        continue;
      }
      limited = 0;
      if (job.status === "completed") return this.getOutput(jobId);
      if (job.done) return failure(this, job);
      await pause(intervalMs ?? pollIntervalMs(job.jobType));
    }
  }
}

/** Throws the API's 410 for a job that failed or was cancelled (it says what was refunded). */
async function failure(client, job) {
  await client.getOutput(job.id);
  throw new JobFailedError(job.error ?? `Job ${job.status}`, { status: 410, body: job.raw });
}

function jobPath(jobId) {
  return `/api/jobs/${encodeURIComponent(jobId)}`;
}

function newIdempotencyKey() {
  const random = globalThis.crypto?.randomUUID?.();
  if (random) return `dc1-sdk-js-${random}`;
  // Node 18 has no global crypto; an idempotency key needs to be unique, not secret.
  const parts = Array.from({ length: 4 }, () =>
    Math.floor(Math.random() * 2 ** 32)
      .toString(16)
      .padStart(8, "0"),
  );
  return `dc1-sdk-js-${parts.join("-")}`;
}
