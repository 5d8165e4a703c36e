"""Money entering a renter's balance: admin credits (payment-gateway top-ups build on the same post)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import ledger
from dcp.billing.ledger import PLATFORM, Account, Leg, TxKind
from dcp.kit.errors import Conflict


async def credit_renter(
    session: AsyncSession, *, renter_id: int, amount: int, reason: str, idempotency_key: str, now: datetime
) -> tuple[int, bool]:
    """Move ``amount`` halala from cash to the renter; returns (transaction id, created now).

    Repeating the same idempotency key returns the first credit; reusing it for another renter or
    amount is refused, since the caller has confused two different credits.
    """
    transaction, created = await ledger.post(
        session,
        kind=TxKind.topup,
        reference=f"renter:{renter_id}",
        idempotency_key=f"admin-credit:{idempotency_key}",
        legs=[Leg(Account.cash, PLATFORM, -amount), Leg(Account.renter_available, renter_id, amount)],
        now=now,
        memo=reason,
    )
    if not created and (
        transaction.reference != f"renter:{renter_id}" or await _credited(session, transaction.id) != amount
    ):
        raise Conflict("This Idempotency-Key was already used for a different credit")
    return transaction.id, created


async def _credited(session: AsyncSession, transaction_id: int) -> int:
    return await ledger.amount_to(session, transaction_id, Account.renter_available)
