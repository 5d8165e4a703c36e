"""The typed error every domain raises; one handler renders it as ``{"error": ...}``."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel


class AppError(Exception):
    """An error a client caused or must know about; ``status`` is its HTTP status."""

    status: ClassVar[int] = 400

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


class ErrorBody(BaseModel):
    """Every failed ``/api`` request answers with this body."""

    error: str


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


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses."""
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]} for status in statuses}
