"""Errors of the money domain."""

from __future__ import annotations

from dcp.kit.errors import AppError, PaymentRequired
from dcp.kit.money import sar_string


class InsufficientFunds(PaymentRequired):
    def __init__(self, *, account: str, needed: int, available: int) -> None:
        super().__init__(
            f"Insufficient balance: {sar_string(needed)} SAR needed, {sar_string(available)} SAR available",
            required_halala=needed,
            available_halala=available,
        )
        self.account = account


class UnbalancedTransaction(AppError):
    """A programming error: a movement whose entries do not sum to zero is never written."""

    status = 500


class NothingHeld(AppError):
    """A programming error: work is being finished that never had money held for it."""

    status = 500

    def __init__(self, work_ref: str) -> None:
        super().__init__(f"no hold exists for {work_ref}")
