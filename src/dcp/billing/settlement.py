"""Paid work's money: the hold at submit, and the one settle and the one refund that resolve it.

Every way a job or a /v1 request can end (completion, failure, cancel, timeout, retries exhausted,
provider lost) goes through ``settle`` or ``refund``. Both post one ledger transaction under the work's
finish key and insert the work's ``Settlement`` row, whose ``work_ref`` is unique, so a second attempt to
finish the same work (a timeout racing a completion) moves no money and returns the first outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, exists, insert, literal, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

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


_FINISH = "finish:"


def _finish_key(work_ref: str) -> str:
    return f"{_FINISH}{work_ref}"


def unfinished(reference: ColumnElement[str] | InstrumentedAttribute[str]) -> ColumnElement[bool]:
    """A SQL condition: the work named by ``reference`` was neither settled nor refunded."""
    finish = aliased(LedgerTransaction)
    return ~exists().where(finish.idempotency_key == literal(_FINISH) + reference)


def hold_posting(*, renter_id: int, work_ref: str, amount: int, now: datetime) -> ledger.Posting:
    """The ledger movement of ``hold``, for callers that post many at once."""
    return ledger.Posting(
        kind=TxKind.hold,
        reference=work_ref,
        idempotency_key=_hold_key(work_ref),
        legs=[Leg(Account.renter_available, renter_id, -amount), Leg(Account.renter_held, renter_id, amount)],
        now=now,
    )


async def hold(session: AsyncSession, *, renter_id: int, work_ref: str, amount: int, now: datetime) -> bool:
    """Reserve ``amount`` from the renter's available money; InsufficientFunds (402) if it is not there.
    Returns whether this call placed the hold (False: the work already had one, which stands)."""
    posting = hold_posting(renter_id=renter_id, work_ref=work_ref, amount=amount, now=now)
    [transaction_id] = await ledger.post_many(session, [posting])
    return transaction_id is not None


async def held_for(session: AsyncSession, work_ref: str) -> int:
    """What the ledger holds for one piece of work (0 when nothing was held)."""
    found = await session.execute(
        select(LedgerTransaction.id).where(LedgerTransaction.idempotency_key == _hold_key(work_ref))
    )
    transaction_id = found.scalar_one_or_none()
    if transaction_id is None:
        return 0
    return await ledger.amount_to(session, transaction_id, Account.renter_held)


@dataclass(frozen=True)
class Finish:
    """How one piece of work's hold ends: its ledger movement and its settlement row."""

    kind: TxKind
    legs: list[Leg]
    row: Settlement


def billed(
    *,
    renter_id: int,
    provider_id: int,
    work_ref: str,
    held: int,
    cost: int,
    provider_percent: int,
    now: datetime,
) -> Finish:
    """Bill ``cost`` (capped at the hold), pay the provider its share, return the rest to the renter."""
    charged = max(0, min(cost, held))
    parts = split(charged, provider_percent=provider_percent)
    legs = [
        Leg(Account.renter_held, renter_id, -held),
        Leg(Account.provider_earnings, provider_id, parts.provider),
        Leg(Account.platform_fees, PLATFORM, parts.platform),
        Leg(Account.renter_available, renter_id, held - charged),
    ]
    row = Settlement(
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
    )
    return Finish(TxKind.charge, legs, row)


def drawn(
    *, renter_id: int, provider_id: int, work_ref: str, cost: int, provider_percent: int, now: datetime
) -> Finish:
    """Bill ``cost`` of a request that reserved its worst case from an allowance (``billing.allowances``):
    the cost leaves the renter's held money, split as ``billed`` splits it; the rest of its worst case
    never left the allowance, so its hold, for the settlement row, is its cost."""
    return billed(
        renter_id=renter_id,
        provider_id=provider_id,
        work_ref=work_ref,
        held=cost,
        cost=cost,
        provider_percent=provider_percent,
        now=now,
    )


def refunded(
    *, renter_id: int, provider_id: int | None, work_ref: str, held: int, reason: str, now: datetime
) -> Finish:
    """Return the whole hold to the renter: the work failed or was cancelled before it ran."""
    legs = [Leg(Account.renter_held, renter_id, -held), Leg(Account.renter_available, renter_id, held)]
    row = Settlement(
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
    )
    return Finish(TxKind.refund, legs, row)


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
    """Bill ``cost`` (see ``billed``) once. ``held``: the amount of the hold the caller itself placed for
    this work (``hold`` returned True), which spares reading it back; otherwise it is read from the ledger."""
    held = await held_for(session, work_ref) if held is None else held
    if held == 0:
        raise NothingHeld(work_ref)
    finish = billed(
        renter_id=renter_id,
        provider_id=provider_id,
        work_ref=work_ref,
        held=held,
        cost=cost,
        provider_percent=provider_percent,
        now=now,
    )
    return await _finish(session, finish)


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
    """Return the whole hold (see ``refunded``) once. ``held`` as for ``settle``."""
    held = await held_for(session, work_ref) if held is None else held
    if held == 0:
        raise NothingHeld(work_ref)
    finish = refunded(
        renter_id=renter_id, provider_id=provider_id, work_ref=work_ref, held=held, reason=reason, now=now
    )
    return await _finish(session, finish)


def _posting(finish: Finish) -> ledger.Posting:
    row = finish.row
    return ledger.Posting(
        kind=finish.kind,
        reference=row.work_ref,
        idempotency_key=_finish_key(row.work_ref),
        legs=[leg for leg in finish.legs if leg.amount != 0],
        now=row.created_at,
        memo=row.reason,
    )


def _row_values(row: Settlement, transaction_id: int) -> dict[str, Any]:
    row.transaction_id = transaction_id
    return {column: getattr(row, column) for column in _SETTLEMENT_COLUMNS}


async def _finish(session: AsyncSession, finish: Finish) -> Settlement:
    row = finish.row
    [transaction_id] = await ledger.post_many(session, [_posting(finish)])
    if transaction_id is None:
        # Another request finished this work first (the key is taken); its outcome is the one that stands.
        existing = await settlement_of(session, row.work_ref)
        if existing is None:
            raise RuntimeError(f"{row.work_ref}: finished in the ledger but has no settlement row")
        return existing
    # The finish key is this transaction's now, and only a holder of it writes the settlement row, so the
    # row's unique work_ref cannot conflict here; if it ever did, the error rolls the whole unit back.
    row.id = (await session.execute(_NEW_SETTLEMENT, _row_values(row, transaction_id))).scalar_one()
    return row


async def finish_many(session: AsyncSession, finishes: list[Finish]) -> list[bool]:
    """Write many finishes in the caller's transaction, a few statements for all of them (see
    ``ledger.post_many``); work finished before keeps its first outcome. On InsufficientFunds or any
    error the caller must roll back: part of the batch may have been written. Returns, per finish, whether
    it was made now (False: the work had been finished before, and that outcome stands)."""
    created = await ledger.post_many(session, [_posting(finish) for finish in finishes])
    rows = [
        _row_values(finish.row, transaction_id)
        for finish, transaction_id in zip(finishes, created, strict=True)
        if transaction_id is not None
    ]
    if rows:
        await session.execute(insert(_SETTLEMENTS), rows)
    return [transaction_id is not None for transaction_id in created]


async def settlement_of(session: AsyncSession, work_ref: str) -> Settlement | None:
    found = await session.execute(select(Settlement).where(Settlement.work_ref == work_ref))
    return found.scalar_one_or_none()
