"""The gateway's money written in groups: each request's settlement and usage row (its cost drawn from its
renter's allowance, ``gateway.allowance``); per-request worst-case holds, as requests placed them before
allowances, and the release of those whose server process died before settling them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from dcp.billing import allowances, ledger, settlement
from dcp.billing.ledger import Account, TxKind
from dcp.models import GatewayRequest, LedgerAccount, LedgerEntry, LedgerTransaction

_NEW_USAGE_ROWS = insert(cast(Table, GatewayRequest.__table__))
REQUEST_PREFIX = "v1-"  # every /v1 request id, and so the reference of its hold, starts with it
_LATE = "billed nothing: its hold had been released as abandoned before it finished"
_CLOSED = "billed nothing: its allowance had been closed before its usage was settled"


@dataclass(frozen=True)
class Hold:
    renter_id: int
    request_id: str
    amount: int
    now: datetime


async def write_holds(session: AsyncSession, holds: list[Hold]) -> list[Exception | None]:
    """Place the holds; InsufficientFunds if a renter's money does not cover all of theirs (the group is then
    written one by one, and only the holds that do not fit are refused)."""
    postings = [
        settlement.hold_posting(
            renter_id=hold.renter_id, work_ref=hold.request_id, amount=hold.amount, now=hold.now
        )
        for hold in holds
    ]
    created = await ledger.post_many(session, postings)
    return [
        None if transaction_id is not None else RuntimeError(f"{hold.request_id} already had a hold")
        for hold, transaction_id in zip(holds, created, strict=True)
    ]


@dataclass(frozen=True)
class Outcome:
    """What one finished request writes: how its money ends (None: it costs nothing) and its usage row.
    ``allowance_id``: the allowance its cost is drawn from (``finish`` is then ``settlement.drawn``)."""

    finish: settlement.Finish | None
    usage: dict[str, Any]
    allowance_id: int | None = None


async def write_outcomes(session: AsyncSession, outcomes: list[Outcome]) -> list[Exception | None]:
    """Each request's settlement (or refund) and usage row, once per request id (a second usage row breaks
    the unique constraint). A request whose hold was released before (``release_abandoned``), or whose
    allowance was closed before (its process stalled past the sweeper's timeout), is billed nothing: the
    platform absorbs it, never the renter."""
    drawing: dict[int, int] = {}
    for outcome in outcomes:
        if outcome.allowance_id is not None and outcome.finish is not None:
            cost = outcome.finish.row.cost_halala
            drawing[outcome.allowance_id] = drawing.get(outcome.allowance_id, 0) + cost
    still_open = await allowances.charge(session, drawing) if drawing else set()
    late = {
        id(o): _CLOSED for o in outcomes if o.allowance_id in drawing and o.allowance_id not in still_open
    }
    billing = [o for o in outcomes if o.finish is not None and id(o) not in late]
    made = await settlement.finish_many(session, [cast(settlement.Finish, o.finish) for o in billing])
    late |= {id(outcome): _LATE for outcome, now in zip(billing, made, strict=True) if not now}
    rows = [
        {**outcome.usage, "allowance_id": outcome.allowance_id}
        | ({"cost_halala": 0, "error": late[id(outcome)]} if id(outcome) in late else {})
        for outcome in outcomes
    ]
    await session.execute(_NEW_USAGE_ROWS, rows)
    return [None] * len(outcomes)


@dataclass(frozen=True)
class OpenHold:
    request_id: str
    renter_id: int
    amount: int
    created_at: datetime


async def abandoned_holds(
    session: AsyncSession, *, since: datetime, before: datetime, limit: int
) -> list[OpenHold]:
    """Holds of /v1 requests placed from ``since`` until ``before`` that nothing settled, oldest first."""
    held = aliased(LedgerAccount)
    found = await session.execute(
        select(LedgerTransaction.reference, held.owner_id, LedgerEntry.amount, LedgerTransaction.created_at)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(held, and_(held.id == LedgerEntry.account_id, held.kind == Account.renter_held))
        .where(
            LedgerTransaction.kind == TxKind.hold,
            LedgerTransaction.created_at >= since,
            LedgerTransaction.created_at < before,
            LedgerTransaction.reference.startswith(REQUEST_PREFIX, autoescape=True),
            settlement.unfinished(LedgerTransaction.reference),
        )
        .order_by(LedgerTransaction.created_at, LedgerTransaction.id)
        .limit(limit)
    )
    return [OpenHold(*row) for row in found]


async def release_abandoned(session: AsyncSession, holds: list[OpenHold], *, now: datetime) -> int:
    """Refund each hold in full, once (a request that finishes later is then billed nothing)."""
    for hold in holds:
        await settlement.refund(
            session,
            renter_id=hold.renter_id,
            provider_id=None,
            work_ref=hold.request_id,
            reason="abandoned: the server process serving the request stopped before settling it",
            now=now,
            held=hold.amount,
        )
    return len(holds)
