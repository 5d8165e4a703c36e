// The renter's client: `new DC1RenterClient({ apiKey, baseUrl })`.

import { APIConnectionError, DC1Error, JobFailedError, RateLimitError, TimeoutError } from "./errors.js";
import { snakeKeys, toBalance, toJob, toOutput, toPendingOutput, toProvider, toRenter } from "./models.js";
import { DEFAULT_BASE_URL, Transport, sleep } from "./transport.js";

const LONG_JOB_TYPES = new Set(["vllm_serve", "custom_container"]);
const PROVIDER_PAGE = 200;
const LONG_POLL_MS = 15_000;

/** The seed's polling guidance: 5 s for short jobs, 15 s for long ones (vllm_serve start-up, scripts). */
function pollIntervalMs(jobType) {
  return LONG_JOB_TYPES.has(jobType) ? LONG_POLL_MS : 5_000;
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

  /**
   * Providers on the marketplace (only live ones unless `liveOnly: false`), every page, in id order. Pages
   * follow the API's cursor, so providers coming online or leaving meanwhile are neither skipped nor repeated.
   */
  async listProviders({ liveOnly = true, minVramGb, gpuModel } = {}) {
    const providers = [];
    const query = { live_only: liveOnly, min_vram_gb: minVramGb, gpu_model: gpuModel, limit: PROVIDER_PAGE };
    for (;;) {
      const { body } = await this.transport.request("GET", "/api/renters/available-providers", { query });
      providers.push(...body.providers.map(toProvider));
      const cursor = body.next_after ?? null;
      if (cursor === null || cursor === query.after) return providers; // the last page (or one repeated)
      query.after = cursor;
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

  async getJob(jobId, { deadline } = {}) {
    const { body } = await this.transport.request("GET", jobPath(jobId), { deadline });
    return toJob(body.job);
  }

  /** The output (`ready: false` while the job runs); throws JobFailedError for a failed or cancelled job. */
  async getOutput(jobId, { deadline } = {}) {
    const { status, body } = await this.transport.request("GET", `${jobPath(jobId)}/output`, {
      allow: [202],
      deadline,
    });
    return status === 202 ? toPendingOutput(body) : toOutput(body);
  }

  /** Cancel: refunded in full before it runs, billed for the time it ran after. */
  async cancelJob(jobId) {
    const { body } = await this.transport.request("POST", `${jobPath(jobId)}/cancel`);
    return toJob(body.job);
  }

  /** One page of the renter's jobs, newest first; `before` (a page's `nextBefore`) gives the next. */
  async historyPage({ status, jobType, limit = 50, offset = 0, before } = {}) {
    const query = { status, job_type: jobType, limit, offset, before };
    const { body } = await this.transport.request("GET", "/api/jobs/history", { query });
    return {
      jobs: body.jobs.map(toJob),
      total: body.total,
      limit: body.limit,
      offset: body.offset,
      nextBefore: body.next_before ?? null,
    };
  }

  /**
   * Every job of the renter, newest first, fetching pages as the loop asks: `for await (… of …)`. Pages
   * follow the API's cursor, so jobs submitted, cancelled or ending during the loop are neither skipped nor
   * repeated.
   */
  async *history({ status, jobType, pageSize = 50 } = {}) {
    for (let before; ;) {
      const page = await this.historyPage({ status, jobType, limit: pageSize, before });
      yield* page.jobs;
      if (page.nextBefore === null || page.nextBefore === before) return;
      before = page.nextBefore;
    }
  }

  /**
   * Poll until the job ends and return its output; 5 s apart (15 s for long jobs) unless `intervalMs` says,
   * backing off exponentially on 429. Throws JobFailedError if it failed or was cancelled, TimeoutError at
   * the deadline (no request outlasts it). A vllm_serve job ends when its serving does: `waitForEndpoint`
   * waits for it to serve.
   */
  async waitForJob(jobId, { timeoutMs = 600_000, intervalMs } = {}) {
    const poll = new Poll(this, `Job ${jobId} did not finish within ${timeoutMs} ms`, timeoutMs, intervalMs);
    for (;;) {
      const job = await poll.read(() => this.getJob(jobId, poll.options()));
      if (job === null) continue;
      if (job.status === "completed") {
        const output = await poll.read(() => this.getOutput(jobId, poll.options()));
        if (output !== null) return output; // else rate limited: paused for it, then read again
        continue;
      }
      if (job.done) return failure(this, job);
      await poll.pause(pollIntervalMs(job.jobType));
    }
  }

  /**
   * A vllm_serve job's OpenAI-compatible endpoint URL, once it serves (polled every 15 s unless `intervalMs`
   * says). Throws JobFailedError if it failed or was cancelled, DC1Error if it ended without serving or is not
   * a vllm_serve job, TimeoutError at the deadline.
   */
  async waitForEndpoint(jobId, { timeoutMs = 600_000, intervalMs } = {}) {
    const job = await this.getJob(jobId);
    if (job.jobType !== "vllm_serve") {
      throw new DC1Error(`Job ${jobId} is a ${job.jobType} job; only vllm_serve jobs have an endpoint`);
    }
    const message = `Job ${jobId} did not serve within ${timeoutMs} ms`;
    const poll = new Poll(this, message, timeoutMs, intervalMs, LONG_POLL_MS);
    for (;;) {
      const output = await poll.read(() => this.getOutput(jobId, poll.options()));
      const url = output?.result?.endpoint_url;
      if (url) return url;
      if (output?.ready) throw new DC1Error(`Job ${jobId} ended without an endpoint`);
      if (output !== null) await poll.pause(LONG_POLL_MS);
    }
  }
}

/** A wait's deadline: pauses never pass it, requests are cut at it, and 429s back off exponentially. */
class Poll {
  constructor(client, message, timeoutMs, intervalMs, defaultMs = 5_000) {
    this.client = client;
    this.message = message;
    this.deadline = Date.now() + timeoutMs;
    this.intervalMs = intervalMs;
    this.everyMs = intervalMs ?? defaultMs; // the interval polled at: 429s back off from it
    this.limited = 0;
  }

  options() {
    return { deadline: this.deadline };
  }

  /** `read()`'s answer; null after a 429 (once paused for it). Cut off or limited at the deadline: a timeout. */
  async read(read) {
    try {
      const answer = await read();
      this.limited = 0;
      return answer;
    } catch (error) {
      const cut = error instanceof APIConnectionError || error instanceof RateLimitError;
      if (cut && Date.now() >= this.deadline) throw new TimeoutError(this.message);
      if (!(error instanceof RateLimitError)) throw error;
      this.limited += 1;
      await this.pause(Math.max(error.retryAfter * 1000, this.everyMs * 2 ** this.limited), true);
      return null;
    }
  }

  /** Waits `intervalMs` (or `ms`, the job type's default), never past the deadline; TimeoutError once there. */
  async pause(ms, backoff = false) {
    const left = this.deadline - Date.now();
    if (left <= 0) throw new TimeoutError(this.message);
    if (!backoff) this.everyMs = this.intervalMs ?? ms;
    await this.client.transport.sleep(Math.min(backoff ? ms : this.everyMs, left));
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
