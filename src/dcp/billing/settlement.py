"""Paid work's money: the hold at submit, and the one settle and the one refund that resolve it.

Every way a job or a /v1 request can end (completion, failure, cancel, timeout, retries exhausted,
provider lost) goes through ``settle`` or ``refund``. Both post one ledger transaction under the work's
finish key and insert the work's ``Settlement`` row, whose ``work_ref`` is unique, so a second attempt to
finish the same work (a timeout racing a completion) moves no money and returns the first outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import ledger
from dcp.billing.errors import NothingHeld
from dcp.billing.ledger import PLATFORM, Account, Leg, TxKind
from dcp.billing.pricing import split
from dcp.models import LedgerTransaction, Settlement

_SETTLEMENTS = cast(Table, Settlement.__table__)
_NEW_SETTLEMENT = insert(_SETTLEMENTS).returning(_SETTLEMENTS.c.id)
_SETTLEMENT_COLUMNS = tuple(column.key for column in _SETTLEMENTS.columns if column.key != "id")


def _hold_key(work_ref: str) -> str:
    return f"hold:{work_ref}"


def _finish_key(work_ref: str) -> str:
    return f"finish:{work_ref}"


async def hold(session: AsyncSession, *, renter_id: int, work_ref: str, amount: int, now: datetime) -> bool:
    """Reserve ``amount`` from the renter's available money; InsufficientFunds (402) if it is not there.
    Returns whether this call placed the hold (False: the work already had one, which stands)."""
    _, created = await ledger.post(
        session,
        kind=TxKind.hold,
        reference=work_ref,
        idempotency_key=_hold_key(work_ref),
        legs=[Leg(Account.renter_available, renter_id, -amount), Leg(Account.renter_held, renter_id, amount)],
        now=now,
    )
    return created


async def held_for(session: AsyncSession, work_ref: str) -> int:
    """What the ledger holds for one piece of work (0 when nothing was held)."""
    found = await session.execute(
        select(LedgerTransaction.id).where(LedgerTransaction.idempotency_key == _hold_key(work_ref))
    )
    transaction_id = found.scalar_one_or_none()
    if transaction_id is None:
        return 0
    return await ledger.amount_to(session, transaction_id, Account.renter_held)


async def settle(
    session: AsyncSession,
    *,
    renter_id: int,
    provider_id: int,
    work_ref: str,
    cost: int,
    provider_percent: int,
    now: datetime,
    held: int | None = None,
) -> Settlement:
    """Bill ``cost`` (capped at the hold), pay the provider its share, return the rest to the renter.
    ``held``: the amount of the hold the caller itself placed for this work (``hold`` returned True),
    which spares reading it back; otherwise it is read from the ledger."""
    held = await held_for(session, work_ref) if held is None else held
    if held == 0:
        raise NothingHeld(work_ref)
    charged = max(0, min(cost, held))
    parts = split(charged, provider_percent=provider_percent)
    legs = [
        Leg(Account.renter_held, renter_id, -held),
        Leg(Account.provider_earnings, provider_id, parts.provider),
        Leg(Account.platform_fees, PLATFORM, parts.platform),
        Leg(Account.renter_available, renter_id, held - charged),
    ]
    return await _finish(
        session,
        kind=TxKind.charge,
        legs=legs,
        row=Settlement(
            work_ref=work_ref,
            outcome="settled",
            renter_id=renter_id,
            provider_id=provider_id,
            held_halala=held,
            cost_halala=charged,
            provider_share_halala=parts.provider,
            platform_fee_halala=parts.platform,
            refunded_halala=held - charged,
            provider_percent=provider_percent,
            created_at=now,
        ),
    )


async def refund(
    session: AsyncSession,
    *,
    renter_id: int,
    provider_id: int | None,
    work_ref: str,
    reason: str,
    now: datetime,
    held: int | None = None,
) -> Settlement:
    """Return the whole hold to the renter: the work failed or was cancelled before it ran. ``held`` as
    for ``settle``."""
    held = await held_for(session, work_ref) if held is None else held
    if held == 0:
        raise NothingHeld(work_ref)
    legs = [Leg(Account.renter_held, renter_id, -held), Leg(Account.renter_available, renter_id, held)]
    return await _finish(
        session,
        kind=TxKind.refund,
        legs=legs,
        row=Settlement(
            work_ref=work_ref,
            outcome="refunded",
            renter_id=renter_id,
            provider_id=provider_id,
            held_halala=held,
            cost_halala=0,
            provider_share_halala=0,
            platform_fee_halala=0,
            refunded_halala=held,
            provider_percent=0,
            reason=reason[:300],
            created_at=now,
        ),
    )


async def _finish(session: AsyncSession, *, kind: TxKind, legs: list[Leg], row: Settlement) -> Settlement:
    transaction, created = await ledger.post(
        session,
        kind=kind,
        reference=row.work_ref,
        idempotency_key=_finish_key(row.work_ref),
        legs=[leg for leg in legs if leg.amount != 0],
        now=row.created_at,
        memo=row.reason,
    )
    if not created:
        # Another request finished this work first (the key is taken); its outcome is the one that stands.
        existing = await settlement_of(session, row.work_ref)
        if existing is None:
            raise RuntimeError(f"{row.work_ref}: finished in the ledger but has no settlement row")
        return existing
    # The finish key is this transaction's now, and only a holder of it writes the settlement row, so the
    # row's unique work_ref cannot conflict here; if it ever did, the error rolls the whole unit back.
    row.transaction_id = transaction.id
    values = {column: getattr(row, column) for column in _SETTLEMENT_COLUMNS}
    row.id = (await session.execute(_NEW_SETTLEMENT, values)).scalar_one()
    return row


async def settlement_of(session: AsyncSession, work_ref: str) -> Settlement | None:
    found = await session.execute(select(Settlement).where(Settlement.work_ref == work_ref))
    return found.scalar_one_or_none()
