// One error tree for every failure the API reports, built from its {error} and /v1 envelopes.

/** Base of every SDK error; `status` is the HTTP status (0 without an answer), `body` the reply. */
export class DC1Error extends Error {
  constructor(message, { status = 0, body = null, code = null } = {}) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.body = body;
    this.code = code;
  }
}

/** 401 or 403: a missing, revoked or wrong-role key. */
export class AuthenticationError extends DC1Error {}

/** 402: the balance cannot cover the hold. */
export class InsufficientBalanceError extends DC1Error {
  get requiredHalala() {
    return bodyField(this.body, "required_halala");
  }

  get availableHalala() {
    return bodyField(this.body, "available_halala");
  }
}

/** 404. */
export class NotFoundError extends DC1Error {}

/** 400 or 409: the request was refused as it is; retrying it unchanged will not help. */
export class ValidationError extends DC1Error {}

/** 429; `retryAfter` is the server's advice in seconds. */
export class RateLimitError extends DC1Error {
  constructor(message, { retryAfter = 1, ...options } = {}) {
    super(message, options);
    this.retryAfter = retryAfter;
  }
}

/**
 * 5xx from the marketplace: no capacity, a provider failed, or an upstream timed out; also a submit's 409
 * `no_capacity_available` (no online provider can take the job now: try again later).
 */
export class ProviderUnavailableError extends DC1Error {}

/** The job failed or was cancelled (the API's 410). */
export class JobFailedError extends DC1Error {
  get refundedHalala() {
    const billing = bodyField(this.body, "billing");
    return bodyField(billing, "refunded_halala");
  }

  get jobStatus() {
    return bodyField(this.body, "status");
  }
}

/**
 * The server could not be reached, or did not answer in time; `sent` is false only when the request
 * certainly never reached it (refused, or the name did not resolve).
 */
export class APIConnectionError extends DC1Error {
  constructor(message, { sent = true, ...options } = {}) {
    super(message, options);
    this.sent = sent;
  }
}

/** A wait ran past its deadline. */
export class TimeoutError extends DC1Error {}

function bodyField(body, name) {
  return body !== null && typeof body === "object" && body[name] !== undefined ? body[name] : null;
}
