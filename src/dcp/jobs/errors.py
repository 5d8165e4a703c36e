"""Errors of the job domain."""

from __future__ import annotations

from dcp.kit.errors import BadRequest, Conflict, NotFound


class JobNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Job not found")


class ProviderUnavailable(Conflict):
    def __init__(self, reason: str) -> None:
        super().__init__(f"Provider cannot take this job: {reason}")


class NoCapacity(Conflict):
    code = "no_capacity_available"

    def __init__(self) -> None:
        super().__init__("No online provider meets this job's requirements right now; try again later")


class StaleLease(Conflict):
    def __init__(self) -> None:
        super().__init__("This lease is not current for this job (expired, reassigned or finished)")


class AlreadyFinished(Conflict):
    def __init__(self, status: str) -> None:
        super().__init__(f"The job is already {status}")


class IdempotencyMismatch(Conflict):
    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used for a different job request")


class InvalidParams(BadRequest):
    pass
