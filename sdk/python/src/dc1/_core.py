"""What both clients share: request building, error mapping, and the retry rule."""

from __future__ import annotations

import random
import uuid
from typing import Any

import httpx

from dc1._exceptions import (
    AuthenticationError,
    DC1Error,
    InsufficientBalanceError,
    JobFailedError,
    NotFoundError,
    ProviderUnavailableError,
    RateLimitError,
    ValidationError,
)

DEFAULT_BASE_URL = "https://api.dcp.sa"
RETRYABLE_CODES = frozenset(
    {"rate_limit_exceeded", "no_capacity_available", "provider_unavailable", "upstream_timeout"}
)
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


def headers_for(api_key: str | None, admin_token: str | None) -> dict[str, str]:
    headers = {"user-agent": "dc1-sdk-python/0.1.0"}
    if admin_token:
        headers["x-admin-token"] = admin_token
    if api_key:
        role = "provider" if "-provider-" in api_key else "renter"
        headers[f"x-{role}-key"] = api_key
    return headers


def submit_body(
    job_type: str,
    params: dict[str, Any],
    *,
    duration_minutes: int,
    provider_id: int | None,
    max_duration_seconds: int | None,
    pricing_class: str | None,
    priority: int | None,
    gpu_requirements: dict[str, Any] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"job_type": job_type, "duration_minutes": duration_minutes, "params": params}
    optional = {
        "provider_id": provider_id,
        "max_duration_seconds": max_duration_seconds,
        "pricing_class": pricing_class,
        "priority": priority,
        "gpu_requirements": gpu_requirements,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    return body


def new_idempotency_key() -> str:
    return f"dc1-sdk-{uuid.uuid4()}"


def error_for(response: httpx.Response) -> DC1Error:
    """The exception for a failed response, from ``{"error": "…"}`` or the /v1 envelope."""
    try:
        body: Any = response.json()
    except ValueError:
        body = {"error": response.text[:500]}
    error = body.get("error") if isinstance(body, dict) else None
    envelope = error if isinstance(error, dict) else {}
    message = str(envelope.get("message") or error or f"HTTP {response.status_code}")
    code = envelope.get("code")
    status = response.status_code
    kwargs: dict[str, Any] = {"status": status, "body": body, "code": code}
    if status == 429:
        retry_after = envelope.get("retry_after_seconds") or (body or {}).get("retry_after_seconds")
        retry_after = retry_after or response.headers.get("retry-after") or 1
        return RateLimitError(message, retry_after=float(retry_after), **kwargs)
    mapping: dict[int, type[DC1Error]] = {
        401: AuthenticationError,
        403: AuthenticationError,
        402: InsufficientBalanceError,
        404: NotFoundError,
        410: JobFailedError,
    }
    if status in mapping:
        return mapping[status](message, **kwargs)
    if status >= 500:
        return ProviderUnavailableError(message, **kwargs)
    return ValidationError(message, **kwargs)


def retry_delay(error: DC1Error, attempt: int) -> float | None:
    """Seconds to wait before retrying, or None when the error is not worth a retry."""
    retryable = error.status in RETRYABLE_STATUSES or (error.code in RETRYABLE_CODES)
    if not retryable:
        return None
    if isinstance(error, RateLimitError):
        return float(error.retry_after)
    jitter: float = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
    return min(8.0, 0.5 * 2.0**attempt) * jitter


def poll_interval(job_type: str) -> float:
    """The seed's guidance: 5 s for short jobs, 15 s for long ones (vllm_serve start-up, scripts)."""
    return 15.0 if job_type in ("vllm_serve", "custom_container") else 5.0
