"""One exception tree for every failure the API reports, built from its ``{error}`` and /v1 envelopes."""

from __future__ import annotations

from typing import Any


class DC1Error(Exception):
    """Base of every SDK error; ``status`` is the HTTP status (0 without an answer), ``body`` the reply."""

    def __init__(self, message: str, *, status: int = 0, body: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.status, self.body, self.code = message, status, body, code


class AuthenticationError(DC1Error):
    """401 or 403: a missing, revoked or wrong-role key."""


class InsufficientBalanceError(DC1Error):
    """402: the balance cannot cover the hold; ``required_halala`` and ``available_halala`` say how much."""

    @property
    def required_halala(self) -> int | None:
        return self.body.get("required_halala") if isinstance(self.body, dict) else None

    @property
    def available_halala(self) -> int | None:
        return self.body.get("available_halala") if isinstance(self.body, dict) else None


class NotFoundError(DC1Error):
    """404."""


class ValidationError(DC1Error):
    """400 or 409: the request was refused as it is; retrying unchanged will not help."""


class RateLimitError(DC1Error):
    """429; ``retry_after`` is the server's advice in seconds."""

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ProviderUnavailableError(DC1Error):
    """5xx from the marketplace: no capacity, a provider failed, or an upstream timed out (retryable); also
    a submit's 409 ``no_capacity_available`` (no online provider can take the job now: try again later).
    ``retry_after``: the server's advice in seconds, when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class JobFailedError(DC1Error):
    """The job failed or was cancelled (the API's 410); ``refunded_halala`` says what came back."""

    @property
    def refunded_halala(self) -> int | None:
        billing = self.body.get("billing") if isinstance(self.body, dict) else None
        return billing.get("refunded_halala") if isinstance(billing, dict) else None


class APIConnectionError(DC1Error):
    """The server could not be reached, or the connection broke before its answer; ``sent`` is False only
    when the request certainly never reached it (refused, or no connection in time)."""

    def __init__(self, message: str, *, sent: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.sent = sent


class TimeoutError(DC1Error):
    """A wait ran past its deadline."""
