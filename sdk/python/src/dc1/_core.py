"""What both clients share: the steps an operation asks for, error mapping, and the retry rule."""

from __future__ import annotations

import contextlib
import email.utils
import random
import time
import uuid
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from dc1._exceptions import (
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
)

T = TypeVar("T")

DEFAULT_BASE_URL = "https://api.dcp.sa"
VERSION = "0.2.0"
RETRYABLE_CODES = frozenset(
    {"rate_limit_exceeded", "no_capacity_available", "provider_unavailable", "upstream_timeout"}
)
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class Call:
    """One HTTP request an operation needs; the client answers with an ``httpx.Response``."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] | None = None
    allow: tuple[int, ...] = ()  # non-2xx statuses the operation reads itself (202 while a job runs)
    deadline: float | None = None  # monotonic seconds: a wait's end, which no retry may pass


@dataclass(frozen=True)
class Sleep:
    """A pause an operation needs (polling, backoff); the client answers with None."""

    seconds: float


# An API operation written once: it yields Calls and Sleeps, the sync or async client performs them.
Operation = Generator[Call | Sleep, Any, T]


def headers_for(api_key: str | None, admin_token: str | None) -> dict[str, str]:
    headers = {"user-agent": f"dc1-sdk-python/{VERSION}"}
    if admin_token:
        headers["x-admin-token"] = admin_token
    if api_key:
        headers[f"x-{role_of(api_key)}-key"] = api_key
    return headers


def role_of(api_key: str | None) -> str:
    return "provider" if api_key and "-provider-" in api_key else "renter"


def new_idempotency_key() -> str:
    return f"dc1-sdk-{uuid.uuid4()}"


def with_retries(operation: Operation[T], max_retries: int) -> Operation[T]:
    """The operation with every Call expanded into attempts; what reaches the client is plain I/O.

    The client answers a Call with the response, or with an ``APIConnectionError`` when no answer came.
    """
    reply: Any = None
    failed: DC1Error | None = None  # a call's error is raised in the operation, which may handle it
    while True:
        try:
            step = operation.send(reply) if failed is None else operation.throw(failed)
        except StopIteration as stop:
            result: T = stop.value
            return result
        failed = None
        if isinstance(step, Sleep):
            reply = yield step
            continue
        try:
            reply = yield from _attempts(step, max_retries)
        except DC1Error as exc:
            reply, failed = None, exc


def _attempts(call: Call, max_retries: int) -> Generator[Call | Sleep, Any, httpx.Response]:
    attempt = 0
    while True:
        reply: httpx.Response | DC1Error = yield call
        if isinstance(reply, httpx.Response):
            if reply.is_success or reply.status_code in call.allow:
                return reply
            reply = error_for(reply)
        delay = retry_delay(reply, attempt, repeatable=_repeatable(call))
        if delay is None or attempt >= max_retries:
            raise reply
        if call.deadline is not None and time.monotonic() + delay >= call.deadline:
            raise TimeoutError("The wait ran out of time while DCP asked to be asked again later") from reply
        yield Sleep(delay)
        attempt += 1


def connection_error(exc: httpx.TransportError) -> APIConnectionError:
    where = ""
    with contextlib.suppress(RuntimeError):  # raised by an error that never had a request
        where = f" at {origin(exc.request.url)}"
    sent, name = not isinstance(exc, _NOT_SENT), type(exc).__name__
    if sent:  # the request went out: it may have been carried out
        return APIConnectionError(
            f"DCP{where} did not answer ({name}); the request may have reached it", sent=True
        )
    return APIConnectionError(f"DCP{where} is unreachable ({name})", sent=False)


_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def origin(url: httpx.URL) -> str:
    """``scheme://host:port``: where a request went, for messages."""
    return f"{url.scheme}://{url.netloc.decode('ascii')}"


def _repeatable(call: Call) -> bool:
    """A call that changes nothing more when made again: a read, or a change under an idempotency key."""
    return call.method in ("GET", "HEAD") or "idempotency-key" in (call.headers or {})


def error_for(response: httpx.Response) -> DC1Error:
    """The exception for a failed response, from ``{"error": "…"}`` or the /v1 envelope."""
    try:
        body: Any = response.json()
    except ValueError:
        body = {"error": response.text[:500]}
    error = body.get("error") if isinstance(body, dict) else None
    envelope = error if isinstance(error, dict) else {}
    message = str(envelope.get("message") or error or f"HTTP {response.status_code}")
    status = response.status_code
    code = envelope.get("code") or (body.get("code") if isinstance(body, dict) else None)
    kwargs: dict[str, Any] = {"status": status, "body": body, "code": code}
    advised = envelope.get("retry_after_seconds") or (body or {}).get("retry_after_seconds")
    retry_after = _seconds(advised) or _seconds(response.headers.get("retry-after"))
    if status == 429:
        return RateLimitError(message, retry_after=retry_after or 1.0, **kwargs)
    mapping: dict[int, type[DC1Error]] = {
        401: AuthenticationError,
        403: AuthenticationError,
        402: InsufficientBalanceError,
        404: NotFoundError,
        410: JobFailedError,
    }
    if status in mapping:
        return mapping[status](message, **kwargs)
    if status >= 500 or code == "no_capacity_available":  # a submit's 409 when no provider can take it now
        return ProviderUnavailableError(message, retry_after=retry_after, **kwargs)
    return ValidationError(message, **kwargs)


def _seconds(advice: Any) -> float | None:
    """A Retry-After (or ``retry_after_seconds``) as seconds: a number, or an HTTP date; None if neither."""
    if isinstance(advice, int | float) and not isinstance(advice, bool):
        return max(0.0, float(advice))
    if not isinstance(advice, str):
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(advice))
    with contextlib.suppress(TypeError, ValueError, IndexError):
        when = email.utils.parsedate_to_datetime(advice)
        return max(0.0, (when - datetime.now(when.tzinfo or UTC)).total_seconds())
    return None


def retry_delay(error: DC1Error, attempt: int, *, repeatable: bool = True) -> float | None:
    """Seconds to wait before retrying, or None when the error is not worth a retry. A change that is not
    ``repeatable`` is retried only when it certainly was not made: never sent, or refused by a rate limit
    (a lost answer or a gateway's 502-504 may follow a change that was made, and a retry reported it as a
    conflict)."""
    if isinstance(error, APIConnectionError):
        return 1.0 if repeatable or not error.sent else None
    retryable = error.status in RETRYABLE_STATUSES or (error.code in RETRYABLE_CODES)
    if not retryable:
        return None
    if isinstance(error, RateLimitError):
        return float(error.retry_after)
    if not repeatable:
        return None
    if isinstance(error, ProviderUnavailableError) and error.retry_after is not None:
        return min(60.0, error.retry_after)  # a server that says when (503 while its database is away)
    jitter: float = random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security
    return min(8.0, 0.5 * 2.0**attempt) * jitter


def poll_interval(job_type: str) -> float:
    """The seed's guidance: 5 s for short jobs, 15 s for long ones (vllm_serve start-up, scripts)."""
    return 15.0 if job_type in ("vllm_serve", "custom_container") else 5.0
