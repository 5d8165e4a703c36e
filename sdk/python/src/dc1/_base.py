"""What both clients share: their configuration, and how a wait combines the stream with polling."""

from __future__ import annotations

import time
from typing import Any

from dc1 import _core, _operations, _streaming
from dc1._core import Operation, T
from dc1._exceptions import (
    APIConnectionError,
    AuthenticationError,
    NotFoundError,
    ProviderUnavailableError,
    RateLimitError,
    ValidationError,
)
from dc1._models import Output


class BaseClient:
    """Renter, provider or admin access to DCP; retries only what the API says is retryable."""

    def __init__(
        self,
        api_key: str | None,
        *,
        base_url: str,
        admin_token: str | None,
        max_retries: int,
        timeout: float,
    ) -> None:
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        self.timeout = timeout
        self._headers = _core.headers_for(api_key, admin_token)

    @property
    def role(self) -> str:
        """``renter`` or ``provider``, from the key's prefix."""
        return _core.role_of(self.api_key)

    def _http_options(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "timeout": self.timeout, "headers": self._headers}

    def _steps(self, operation: Operation[T]) -> Operation[T]:
        """The operation as plain I/O steps, retries included, for the sync or async loop to perform."""
        return _core.with_retries(operation, self.max_retries)


# Errors after which a wait stops following the stream and polls instead (a timeout ends the wait).
STREAM_FALLBACK = (
    APIConnectionError,
    AuthenticationError,
    NotFoundError,
    ProviderUnavailableError,
    RateLimitError,
    ValidationError,
)


def wait_plan(
    job_id: str, timeout: float, interval: float | None
) -> tuple[_streaming.StreamPlan, Operation[Output]]:
    """The stream to follow first, and the polling that confirms the end (or takes over from the stream)."""
    deadline = time.monotonic() + timeout
    polling = _operations.wait_by_polling(job_id, deadline=deadline, interval=interval)
    return _streaming.StreamPlan(job_id, deadline), polling


def endpoint_wait(job_id: str, timeout: float, interval: float | None) -> Operation[str]:
    return _operations.endpoint_url(job_id, deadline=time.monotonic() + timeout, interval=interval)
