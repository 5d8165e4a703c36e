"""The typed error every domain raises; one handler renders it as ``{"error": ...}``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class AppError(Exception):
    """An error a client caused or must know about; ``status`` is its HTTP status.

    Under ``/v1`` the same error is rendered in the OpenAI-shaped envelope, with ``code`` and ``kind`` (the
    envelope's ``type``) taken from the class or, when it names none, from its status.
    """

    status: ClassVar[int] = 400
    code: ClassVar[str | None] = None
    kind: ClassVar[str | None] = None
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class BadRequest(AppError):
    status = 400


class Unauthorized(AppError):
    status = 401


class Forbidden(AppError):
    status = 403


class NotFound(AppError):
    status = 404


class Conflict(AppError):
    status = 409


class PaymentRequired(AppError):
    status = 402
    code = "insufficient_balance"


class ErrorBody(BaseModel):
    """Every failed ``/api`` request answers with this body."""

    error: str
    code: str | None = Field(
        None,
        description="Present on errors a client may act on: insufficient_balance, no_capacity_available "
        "(no online provider can take the job now; try again later), rate_limit_exceeded",
    )


_DESCRIPTIONS = {
    400: "Invalid request: the message names the field",
    401: "Missing, invalid or revoked key",
    402: "Insufficient balance",
    403: "A key of another role, or a suspended account",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Request body too large",
    429: "Too many requests",
    502: "An upstream service (payment gateway, provider) failed; nothing was charged",
}


class InsufficientBalanceBody(ErrorBody):
    """A 402 also says what was needed and what was there."""

    required_halala: int | None = None
    available_halala: int | None = None


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses."""
    return {
        status: {
            "model": InsufficientBalanceBody if status == 402 else ErrorBody,
            "description": _DESCRIPTIONS[status],
        }
        for status in statuses
    }


class V1Error(BaseModel):
    model_config = ConfigDict(extra="allow")

    message: str
    type: str
    code: str
    status: int
    retryable: bool


class V1ErrorBody(BaseModel):
    """Every failed ``/v1`` request answers with this envelope (a 429 repeats its retry hints beside it)."""

    model_config = ConfigDict(extra="allow")

    error: V1Error


def v1_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The same entries for the ``/v1`` routes, whose errors use the OpenAI-shaped envelope."""
    return {status: {"model": V1ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}


# The /v1 envelope's type and code for each status, where the error does not say more.
V1_DEFAULTS: dict[int, tuple[str, str, bool]] = {
    400: ("invalid_request_error", "invalid_request_error", False),
    401: ("authentication_error", "authentication_error", False),
    402: ("billing_error", "insufficient_balance", False),
    403: ("permission_error", "permission_denied", False),
    404: ("invalid_request_error", "not_found", False),
    405: ("invalid_request_error", "method_not_allowed", False),
    408: ("invalid_request_error", "request_timeout", True),
    409: ("invalid_request_error", "conflict", False),
    413: ("invalid_request_error", "request_too_large", False),
    431: ("invalid_request_error", "request_headers_too_large", False),
    429: ("rate_limit_error", "rate_limit_exceeded", True),
    502: ("api_error", "provider_unavailable", True),
    503: ("api_error", "no_capacity_available", True),
    504: ("timeout_error", "upstream_timeout", True),
}


def v1_envelope(
    status: int,
    message: str,
    *,
    code: str | None = None,
    kind: str | None = None,
    retryable: bool | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The seed's deterministic /v1 error body."""
    default_kind, default_code, default_retryable = V1_DEFAULTS.get(
        status, ("api_error", "internal_error", True)
    )
    error = {
        "message": message,
        "type": kind or default_kind,
        "code": code or default_code,
        "status": status,
        "retryable": default_retryable if retryable is None else retryable,
        **extra,
    }
    return {"error": error}
