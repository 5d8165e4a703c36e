// The SDK's objects, made from the API's bodies: camelCase, amounts in integer halala plus exact SAR strings.

export const TERMINAL_STATUSES = Object.freeze(["completed", "failed", "cancelled"]);

// Each SDK field and the API field it is read from; the contract test checks each against the OpenAPI spec.
export const FIELDS = Object.freeze({
  Job: {
    id: "job_id",
    jobId: "job_id",
    status: "status",
    jobType: "job_type",
    model: "model",
    providerId: "provider_id",
    renterId: "renter_id",
    durationMinutes: "duration_minutes",
    costHalala: "cost_halala",
    actualCostHalala: "actual_cost_halala",
    refundedHalala: "refunded_halala",
    priority: "priority",
    pricingClass: "pricing_class",
    queuePosition: "queue_position",
    progress: "progress",
    error: "error",
    submittedAt: "submitted_at",
    startedAt: "started_at",
    completedAt: "completed_at",
  },
  Provider: {
    id: "id",
    name: "name",
    gpuModel: "gpu_model",
    gpuName: "gpu_name",
    gpuCount: "gpu_count",
    vramGb: "vram_gb",
    isLive: "is_live",
    status: "status",
    cachedModels: "cached_models",
    pricePerMinuteHalala: "price_per_minute_halala",
    reliabilityPct: "reliability_pct",
    lastHeartbeat: "last_heartbeat",
  },
  Balance: {
    balanceHalala: "balance_halala",
    heldHalala: "held_halala",
    totalHalala: "total_halala",
  },
  Renter: {
    id: "id",
    name: "name",
    email: "email",
    organization: "organization",
    useCase: "use_case",
    status: "status",
    createdAt: "created_at",
    balanceHalala: "balance_halala",
    heldHalala: "held_halala",
    totalJobs: "total_jobs",
  },
  JobOutput: {
    jobId: "job_id",
    status: "status",
    type: "type",
    text: "response",
    tokensGenerated: "tokens_generated",
    executionTimeMs: "execution_time_ms",
    actualCostHalala: "actual_cost_halala",
  },
  Billing: {
    quotedHalala: "quoted_halala",
    actualCostHalala: "actual_cost_halala",
    refundedHalala: "refunded_halala",
  },
  JobPendingOutput: {
    jobId: "job_id",
    status: "status",
    progress: "progress",
    queuePosition: "queue_position",
    message: "message",
  },
});

/** Halala to SAR as an exact decimal string: `sar(12345) === "123.45"` (never a float). */
export function sar(halala) {
  if (!Number.isSafeInteger(halala)) throw new TypeError(`halala must be an integer, got ${halala}`);
  const whole = Math.abs(halala);
  const sign = halala < 0 ? "-" : "";
  return `${sign}${Math.floor(whole / 100)}.${String(whole % 100).padStart(2, "0")}`;
}

function pick(fields, body) {
  const picked = {};
  for (const [name, source] of Object.entries(fields)) picked[name] = body?.[source] ?? null;
  return picked;
}

export function toJob(body) {
  const job = pick(FIELDS.Job, body);
  job.costSar = sar(job.costHalala);
  job.actualCostSar = job.actualCostHalala === null ? null : sar(job.actualCostHalala);
  job.done = TERMINAL_STATUSES.includes(job.status);
  job.raw = body;
  return job;
}

export function toProvider(body) {
  return { ...pick(FIELDS.Provider, body), raw: body };
}

export function toBalance(body) {
  const balance = pick(FIELDS.Balance, body);
  return { ...balance, balanceSar: sar(balance.balanceHalala), heldSar: sar(balance.heldHalala), raw: body };
}

export function toRenter(body) {
  const renter = pick(FIELDS.Renter, body);
  return { ...renter, balanceSar: sar(renter.balanceHalala), raw: body };
}

/** A finished job's output; `result.output` is its text (an LLM's response, a script's stdout). */
export function toOutput(body) {
  const output = pick(FIELDS.JobOutput, body);
  const result = { ...body.result };
  result.output ??= result.response ?? null;
  return {
    ...output,
    ready: true,
    result,
    billing: pick(FIELDS.Billing, body.billing),
    costSar: sar(output.actualCostHalala),
    raw: body,
  };
}

/** The 202 answer while a job is queued or running: no result yet. */
export function toPendingOutput(body) {
  return { ...pick(FIELDS.JobPendingOutput, body), ready: false, result: null, costSar: null, raw: body };
}

/** Top-level camelCase keys (`maxTokens`) become the API's snake_case (`max_tokens`); others pass as is. */
export function snakeKeys(object) {
  const converted = {};
  for (const [key, value] of Object.entries(object ?? {})) {
    converted[key.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)] = value;
  }
  return converted;
}
