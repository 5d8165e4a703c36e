// Declarations of dc1-renter-sdk. Amounts are integer halala (1/100 SAR); `…Sar` fields are exact strings.

export type JobType = "llm_inference" | "image_generation" | "vllm_serve" | "custom_container";
export type JobStatus = "pending" | "assigned" | "running" | "completed" | "failed" | "cancelled";
export type PricingClass = "priority" | "standard" | "economy";

/** "https://api.dcp.sa" */
export declare const DEFAULT_BASE_URL: string;
export declare const TERMINAL_STATUSES: readonly ["completed", "failed", "cancelled"];
/** Halala to SAR as an exact decimal string: `sar(12345) === "123.45"`. */
export declare function sar(halala: number): string;

/** What the client passes to `fetch`; typed here so these need neither the DOM lib nor @types/node. */
export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** An AbortSignal. */
  signal?: any;
}

export interface FetchResponse {
  ok: boolean;
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export interface ClientOptions {
  /** The renter's key, `dc1-renter-…`; only listProviders works without one. */
  apiKey?: string;
  /** Default DEFAULT_BASE_URL. */
  baseUrl?: string;
  /** Retries of a retryable failure (429, 502-504, the retryable codes, no connection); default 2. */
  maxRetries?: number;
  /** How long one request may take; default 30000. */
  timeoutMs?: number;
  /** Default the global fetch (Node 18+, browsers). */
  fetch?: (url: string, init: FetchInit) => Promise<FetchResponse>;
  /** How the client waits between retries and polls; default a setTimeout. Tests pass their own. */
  sleep?: (ms: number) => Promise<void>;
}

export interface Provider {
  id: number;
  name: string;
  gpuModel: string;
  gpuName: string | null;
  gpuCount: number;
  vramGb: number;
  isLive: boolean;
  status: string;
  cachedModels: string[];
  /** Per job type. */
  pricePerMinuteHalala: Record<string, number>;
  reliabilityPct: number;
  lastHeartbeat: string | null;
  raw: Record<string, unknown>;
}

export interface Job {
  /** The job's id (`job_id` in the API): what getJob, getOutput, waitForJob and cancelJob take. */
  id: string;
  jobId: string;
  status: JobStatus;
  jobType: JobType;
  model: string | null;
  providerId: number | null;
  renterId: number;
  durationMinutes: number;
  /** The quote, held from the balance at submit. */
  costHalala: number;
  costSar: string;
  /** What the job cost, once it has ended. */
  actualCostHalala: number | null;
  actualCostSar: string | null;
  refundedHalala: number | null;
  priority: number;
  pricingClass: string;
  queuePosition: number | null;
  progress: number;
  error: string | null;
  submittedAt: string | null;
  startedAt: string | null;
  completedAt: string | null;
  /** Completed, failed or cancelled. */
  done: boolean;
  raw: Record<string, unknown>;
}

/** The job's result as the provider reported it, plus `output`. */
export interface JobResultPayload {
  /** The job's text: an LLM's response, a script's stdout; null for images and endpoints. */
  output: string | null;
  response?: string;
  image_base64?: string;
  endpoint_url?: string;
  [field: string]: unknown;
}

export interface Billing {
  quotedHalala: number;
  actualCostHalala: number;
  refundedHalala: number;
}

/** The output of a finished job (or of a running vllm_serve job whose endpoint is up). */
export interface JobOutput {
  ready: true;
  jobId: string;
  status: JobStatus;
  type: "text" | "image" | "endpoint" | "container";
  result: JobResultPayload;
  /** An LLM's response. */
  text: string | null;
  tokensGenerated: number | null;
  executionTimeMs: number | null;
  actualCostHalala: number;
  /** What the job cost, in SAR. */
  costSar: string;
  billing: Billing;
  raw: Record<string, unknown>;
}

/** The output while the job is queued or running (the API's 202). */
export interface PendingOutput {
  ready: false;
  jobId: string;
  status: JobStatus;
  progress: number;
  queuePosition: number | null;
  message: string;
  result: null;
  costSar: null;
  raw: Record<string, unknown>;
}

export interface Balance {
  /** Available to spend now. */
  balanceHalala: number;
  balanceSar: string;
  /** Reserved for jobs that have not finished. */
  heldHalala: number;
  heldSar: string;
  totalHalala: number;
  raw: Record<string, unknown>;
}

export interface Renter {
  id: number;
  name: string;
  email: string;
  organization: string | null;
  useCase: string | null;
  status: string;
  createdAt: string | null;
  balanceHalala: number;
  balanceSar: string;
  heldHalala: number;
  totalJobs: number;
  raw: Record<string, unknown>;
}

export interface Me {
  renter: Renter;
  /** The five most recent jobs. */
  recentJobs: Job[];
}

export interface HistoryPage {
  jobs: Job[];
  /** Jobs that match the filters, on every page. */
  total: number;
  limit: number;
  offset: number;
  /** Pass as `before` for the next page; null on the last. */
  nextBefore: string | null;
}

type Snake<S extends string> = S extends `${infer Head}${infer Tail}`
  ? `${Head extends Lowercase<Head> ? Head : `_${Lowercase<Head>}`}${Snake<Tail>}`
  : S;
/** The same fields spelt as the REST API spells them (`max_tokens`); camelCase keys are sent that way. */
export type SnakeCased<T> = { [K in keyof T as K extends string ? Snake<K> : K]: T[K] };

export interface LlmParams {
  prompt: string;
  model?: string;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop?: string[];
  seed?: number;
}

export interface ImageParams {
  prompt: string;
  model?: string;
  negativePrompt?: string;
  steps?: number;
  /** A multiple of 8 from 64 to 2048. */
  width?: number;
  height?: number;
  guidanceScale?: number;
  seed?: number;
}

export interface VllmServeParams {
  model: string;
  maxModelLen?: number;
  dtype?: "auto" | "float16" | "bfloat16" | "float32";
}

export interface ContainerParams {
  script: string;
  imageOverride?: string;
  /** Ask for network access (an operator must allow it). */
  network?: boolean;
}

export interface GpuRequirements {
  minVramGb?: number;
  gpuModel?: string;
}

interface SubmitCommon {
  /** Billing basis: the hold is for this long (1 to 1440). */
  durationMinutes: number;
  /** Absent: DCP places the job. */
  providerId?: number;
  maxDurationSeconds?: number;
  pricingClass?: PricingClass;
  /** 0 to 10, higher runs first. */
  priority?: number;
  gpuRequirements?: GpuRequirements | SnakeCased<GpuRequirements>;
  /** Default a new random key per call; a retry of that call reuses it. */
  idempotencyKey?: string;
}

export type SubmitJobOptions = SubmitCommon &
  (
    | { jobType: "llm_inference"; params: LlmParams | SnakeCased<LlmParams> }
    | { jobType: "image_generation"; params: ImageParams | SnakeCased<ImageParams> }
    | { jobType: "vllm_serve"; params: VllmServeParams | SnakeCased<VllmServeParams> }
    | { jobType: "custom_container"; params: ContainerParams | SnakeCased<ContainerParams> }
  );

export interface ListProvidersOptions {
  /** Default true: only providers online and accepting jobs now. */
  liveOnly?: boolean;
  minVramGb?: number;
  /** A substring of the GPU model. */
  gpuModel?: string;
}

export interface HistoryFilter {
  status?: JobStatus;
  jobType?: JobType;
}

export interface HistoryPageOptions extends HistoryFilter {
  /** 1 to 200, default 50. */
  limit?: number;
  offset?: number;
  /** Only jobs older than this one: the previous page's `nextBefore` (a cursor: nothing skipped or repeated). */
  before?: string;
}

export interface HistoryOptions extends HistoryFilter {
  /** Jobs fetched per request, 1 to 200, default 50. */
  pageSize?: number;
}

export interface ReadOptions {
  /** Epoch milliseconds: no attempt outlasts it, and no retry waits past it. */
  deadline?: number;
}

export interface WaitOptions {
  /** Default 600000 (10 minutes). */
  timeoutMs?: number;
  /** Default 5000, or 15000 for vllm_serve and custom_container jobs. */
  intervalMs?: number;
}

export declare class DC1RenterClient {
  constructor(options?: ClientOptions);
  /** The renter's profile and its five most recent jobs. */
  me(): Promise<Me>;
  balance(): Promise<Balance>;
  /** Every page of the marketplace's providers, in id order. */
  listProviders(options?: ListProvidersOptions): Promise<Provider[]>;
  /** Submit a job; a retried request carries the same idempotency key, so it never creates a second job. */
  submitJob(options: SubmitJobOptions): Promise<Job>;
  getJob(jobId: string, options?: ReadOptions): Promise<Job>;
  /** `ready: false` while the job runs; throws JobFailedError for a failed or cancelled job. */
  getOutput(jobId: string, options?: ReadOptions): Promise<JobOutput | PendingOutput>;
  /** Refunded in full before it runs, billed for the time it ran after. */
  cancelJob(jobId: string): Promise<Job>;
  historyPage(options?: HistoryPageOptions): Promise<HistoryPage>;
  /** Every job, newest first: `for await (const job of client.history())`. */
  history(options?: HistoryOptions): AsyncGenerator<Job, void, undefined>;
  /** Polls until the job ends; JobFailedError if it failed or was cancelled, TimeoutError at the deadline. */
  waitForJob(jobId: string, options?: WaitOptions): Promise<JobOutput>;
  /** A vllm_serve job's endpoint URL once it serves (15 s polls by default); TimeoutError at the deadline. */
  waitForEndpoint(jobId: string, options?: WaitOptions): Promise<string>;
}

export interface DC1ErrorOptions {
  status?: number;
  body?: unknown;
  code?: string | null;
}

/** Base of every SDK error; `status` is the HTTP status (0 without an answer), `body` the reply. */
export declare class DC1Error extends Error {
  constructor(message: string, options?: DC1ErrorOptions);
  status: number;
  body: unknown;
  /** The /v1 envelope's code, e.g. "rate_limit_exceeded". */
  code: string | null;
}
/** 401 or 403: a missing, revoked or wrong-role key. */
export declare class AuthenticationError extends DC1Error {}
/** 402: the balance cannot cover the hold. */
export declare class InsufficientBalanceError extends DC1Error {
  get requiredHalala(): number | null;
  get availableHalala(): number | null;
}
export declare class NotFoundError extends DC1Error {}
/** 400 or 409: refused as it is; retrying it unchanged will not help. */
export declare class ValidationError extends DC1Error {}
/** 429. */
export declare class RateLimitError extends DC1Error {
  constructor(message: string, options?: DC1ErrorOptions & { retryAfter?: number });
  /** The server's advice, in seconds. */
  retryAfter: number;
}
/** 5xx: no capacity, a provider failed, or an upstream timed out; also a submit's 409 `no_capacity_available`. */
export declare class ProviderUnavailableError extends DC1Error {}
/** The job failed or was cancelled (the API's 410). */
export declare class JobFailedError extends DC1Error {
  get refundedHalala(): number | null;
  get jobStatus(): JobStatus | null;
}
/** The server could not be reached, or did not answer in time. */
export declare class APIConnectionError extends DC1Error {
  /** False only when the request certainly never reached the server. */
  readonly sent: boolean;
}
/** A wait ran past its deadline. */
export declare class TimeoutError extends DC1Error {}

// Only what is marked `export` above is public.
export {};
