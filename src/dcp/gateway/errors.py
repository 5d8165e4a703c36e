"""The /v1 errors, each with the seed's envelope code."""

from __future__ import annotations

from dcp.kit.errors import AppError


class ModelNotFound(AppError):
    status = 404
    code = "model_not_found"


class NoCapacity(AppError):
    status = 503
    code = "no_capacity_available"
    retryable = True

    def __init__(self, message: str) -> None:
        # Slots free as answers end: clients (the OpenAI SDK reads Retry-After) are told to wait a second.
        super().__init__(message, retry_after_seconds=1)


class ProviderUnavailable(AppError):
    status = 502
    code = "provider_unavailable"
    retryable = True


class UpstreamTimeout(AppError):
    status = 504
    code = "upstream_timeout"
    retryable = True


class RateLimited(AppError):
    status = 429
    code = "rate_limit_exceeded"
    retryable = True

    def __init__(self, retry_after: float) -> None:
        seconds = max(1, int(retry_after + 0.999))
        super().__init__(
            f"Rate limit exceeded. Retry after {seconds} seconds.",
            retry_after_seconds=seconds,
            retry_after_ms=int(retry_after * 1000),
        )
