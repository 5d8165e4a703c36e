"""Errors of the withdrawal domain."""

from __future__ import annotations

from dcp.kit.errors import BadRequest, Conflict, NotFound
from dcp.kit.money import sar_string


class WithdrawalNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Withdrawal not found")


class AlreadyOpen(Conflict):
    def __init__(self) -> None:
        super().__init__(
            "You already have a withdrawal request in progress; wait until it is paid or rejected"
        )


class IdempotencyMismatch(Conflict):
    def __init__(self) -> None:
        super().__init__("This Idempotency-Key was already used for a different withdrawal request")


class MoreThanEarned(BadRequest):
    def __init__(self, *, requested: int, available: int) -> None:
        super().__init__(
            f"Amount exceeds your withdrawable earnings ({sar_string(available)} SAR)",
            requested_halala=requested,
            available_halala=available,
        )


class WrongState(Conflict):
    def __init__(self, *, action: str, status: str) -> None:
        super().__init__(f"Cannot {action} a withdrawal that is {status}")
