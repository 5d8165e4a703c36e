// dc1-renter-sdk: the JavaScript SDK for renters of DCP, the GPU compute marketplace.

export { DC1RenterClient } from "./client.js";
export {
  APIConnectionError,
  AuthenticationError,
  DC1Error,
  InsufficientBalanceError,
  JobFailedError,
  NotFoundError,
  ProviderUnavailableError,
  RateLimitError,
  TimeoutError,
  ValidationError,
} from "./errors.js";
export { TERMINAL_STATUSES, sar } from "./models.js";
export { DEFAULT_BASE_URL } from "./transport.js";
