// HTTP for the client: request building, error mapping, and the retry rule (the same as the Python SDK's).

import {
  APIConnectionError,
  AuthenticationError,
  DC1Error,
  InsufficientBalanceError,
  JobFailedError,
  NotFoundError,
  ProviderUnavailableError,
  RateLimitError,
  ValidationError,
} from "./errors.js";

export const DEFAULT_BASE_URL = "https://api.dcp.sa";
const RETRYABLE_CODES = new Set([
  "rate_limit_exceeded",
  "no_capacity_available",
  "provider_unavailable",
  "upstream_timeout",
]);
const RETRYABLE_STATUSES = new Set([429, 502, 503, 504]);
const ERROR_BY_STATUS = {
  401: AuthenticationError,
  402: InsufficientBalanceError,
  403: AuthenticationError,
  404: NotFoundError,
  410: JobFailedError,
};
const CONNECTION_RETRY_MS = 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The error for an answer, from `{"error": "…"}` or the /v1 envelope `{"error": {message, code}}`. */
function errorFor(status, body, retryAfterHeader = null) {
  const error = body !== null && typeof body === "object" ? body.error : undefined;
  const envelope = error !== null && typeof error === "object" ? error : {};
  const message = String(envelope.message || error || `HTTP ${status}`);
  const code = envelope.code ?? (body !== null && typeof body === "object" ? body.code : null) ?? null;
  const options = { status, body, code };
  if (status === 429) {
    const advised = Number(
      envelope.retry_after_seconds ?? body?.retry_after_seconds ?? retryAfterHeader ?? 1,
    );
    return new RateLimitError(message, { ...options, retryAfter: Number.isFinite(advised) ? advised : 1 });
  }
  // A submit's 409 no_capacity_available: no provider can take the job now, so it is worth trying later.
  const unavailable = status >= 500 || code === "no_capacity_available";
  const ErrorClass = ERROR_BY_STATUS[status] ?? (unavailable ? ProviderUnavailableError : ValidationError);
  return new ErrorClass(message, options);
}

/**
 * Milliseconds to wait before retry number `attempt + 1`, or null when the error is not worth a retry. A
 * change that is not `repeatable` is retried only when it certainly was not made: never sent, or a 429 (a
 * lost answer or a gateway's 502-504 may follow a cancel that was made, and a retry reported a conflict).
 */
function retryDelayMs(error, attempt, repeatable) {
  if (error instanceof APIConnectionError) return repeatable || !error.sent ? CONNECTION_RETRY_MS : null;
  const retryable = RETRYABLE_STATUSES.has(error.status) || RETRYABLE_CODES.has(error.code);
  if (!retryable) return null;
  if (error instanceof RateLimitError) return error.retryAfter * 1000;
  if (!repeatable) return null;
  return Math.min(8000, 500 * 2 ** attempt) * (0.5 + Math.random() / 2);
}

// Failures before a request is written: it never reached the server.
const NOT_SENT = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN"]);

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Sends requests with the renter's key and retries what the API calls retryable. */
export class Transport {
  constructor({ apiKey, baseUrl, maxRetries, timeoutMs, fetch, sleep: wait }) {
    const send = fetch ?? globalThis.fetch;
    if (typeof send !== "function") {
      throw new DC1Error("No fetch: use Node 18 or later, a browser, or pass { fetch }");
    }
    this.fetch = fetch ? send : send.bind(globalThis); // a browser's fetch refuses another `this`
    if (!/^https?:\/\/[^/]/i.test(String(baseUrl))) {
      throw new DC1Error(`baseUrl must be an http:// or https:// URL, not ${JSON.stringify(baseUrl)}`);
    }
    if (apiKey !== undefined && apiKey !== null && !/^[\x21-\x7e]*$/.test(String(apiKey))) {
      throw new DC1Error("apiKey holds characters no API key has (spaces, line breaks or non-ASCII)");
    }
    if (!(timeoutMs > 0)) throw new DC1Error(`timeoutMs must be a positive number, not ${timeoutMs}`);
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.headers = apiKey
      ? { accept: "application/json", "x-renter-key": apiKey }
      : { accept: "application/json" };
    this.maxRetries = maxRetries;
    this.timeoutMs = timeoutMs;
    this.sleep = wait;
  }

  /**
   * The answer `{status, body}`: a success or a status in `allow`; anything else is thrown as a DC1Error.
   * With a `deadline` (epoch ms), no attempt outlasts it and no retry waits past it.
   */
  async request(method, path, { query, json, headers, allow = [], deadline = Infinity } = {}) {
    const init = { method, headers: { ...this.headers, ...headers } };
    if (json !== undefined) {
      init.body = JSON.stringify(json);
      init.headers["content-type"] = "application/json";
    }
    const url = this.url(path, query);
    // A read, or a change under an idempotency key, changes nothing more when asked again.
    const repeatable = method === "GET" || "idempotency-key" in init.headers;
    for (let attempt = 0; ; attempt += 1) {
      const answer = await this.send(url, init, Math.min(this.timeoutMs, deadline - Date.now()));
      const unanswered = answer instanceof APIConnectionError;
      if (!unanswered && (answer.ok || allow.includes(answer.status))) return answer;
      const error = unanswered ? answer : errorFor(answer.status, answer.body, answer.retryAfter);
      const delay = retryDelayMs(error, attempt, repeatable);
      if (delay === null || attempt >= this.maxRetries || Date.now() + delay >= deadline) throw error;
      await this.sleep(delay);
    }
  }

  url(path, query = {}) {
    const search = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null) search.set(name, String(value));
    }
    const rest = search.toString();
    return `${this.baseUrl}${path}${rest ? `?${rest}` : ""}`;
  }

  /**
   * One attempt, cut after `timeoutMs` (none past setTimeout's limit, about 24.8 days): the answer, or an
   * APIConnectionError (returned, so the retry rule can judge it).
   */
  async send(url, init, timeoutMs) {
    const controller = new AbortController();
    const limited = timeoutMs <= MAX_TIMER_MS;
    const timer = limited ? setTimeout(() => controller.abort(), Math.max(0, timeoutMs)) : null;
    try {
      const response = await this.fetch(url, { ...init, signal: controller.signal });
      const text = await response.text();
      return {
        ok: response.ok,
        status: response.status,
        body: parseBody(text),
        retryAfter: response.headers.get("retry-after"),
      };
    } catch (caught) {
      const reason = controller.signal.aborted ? `no answer within ${timeoutMs} ms` : describe(caught);
      const sent = controller.signal.aborted || !NOT_SENT.has(caught?.cause?.code);
      return new APIConnectionError(`DCP is unreachable at ${this.baseUrl}: ${reason}`, { sent });
    } finally {
      clearTimeout(timer);
    }
  }
}

function parseBody(text) {
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { error: text.slice(0, 500) };
  }
}

function describe(caught) {
  const cause = caught?.cause?.code ?? caught?.cause?.message;
  return cause ? `${caught.message} (${cause})` : String(caught?.message ?? caught);
}
