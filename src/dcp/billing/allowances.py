"""A renter's /v1 allowance in the ledger: one hold (renter available -> renter held, reference
``allowance:<process>:<renter>:<n>``) that a server process tops up when short, that settled requests
draw their cost from, and that is closed once, releasing what was not spent.

The allowance's row is locked first by every change (top-up, a settlement's charge, closing), so a
settlement that comes after the allowance was closed (its process was paused past the sweeper's timeout)
finds it closed and charges nothing: never the renter twice, never money that is not held."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import ledger
from dcp.billing.errors import InsufficientFunds
from dcp.billing.ledger import Account, Leg, TxKind
from dcp.models import GatewayAllowance, LedgerAccount

PREFIX = "allowance:"
_ROWS = cast(Table, GatewayAllowance.__table__)
_OPEN = insert(_ROWS).returning(_ROWS.c.id)
_TOP_UP = (
    update(_ROWS)
    .where(_ROWS.c.id == bindparam("p_id"), _ROWS.c.closed_at.is_(None))
    .values(held_halala=_ROWS.c.held_halala + bindparam("p_amount"), renewed_at=bindparam("p_now"))
    .returning(_ROWS.c.held_halala)
)
_CHARGE = (
    update(_ROWS)
    .where(
        _ROWS.c.id == bindparam("p_id"),
        _ROWS.c.closed_at.is_(None),
        _ROWS.c.spent_halala + bindparam("p_amount") <= _ROWS.c.held_halala,
    )
    .values(spent_halala=_ROWS.c.spent_halala + bindparam("p_amount"))
    .returning(_ROWS.c.id)
)
_CLOSE = (
    update(_ROWS)
    .where(_ROWS.c.id == bindparam("p_id"), _ROWS.c.closed_at.is_(None))
    .values(closed_at=bindparam("p_now"), closed_reason=bindparam("p_reason"))
    .returning(_ROWS.c.renter_id, _ROWS.c.reference, _ROWS.c.held_halala - _ROWS.c.spent_halala)
)


def reference(*, process: str, renter_id: int, number: int) -> str:
    return f"{PREFIX}{process}:{renter_id}:{number}"


class AllowanceClosed(Exception):
    """The allowance was closed by another hand (the sweeper): open a new one."""


@dataclass(frozen=True)
class Taken:
    allowance_id: int
    amount: int


async def take(
    session: AsyncSession,
    *,
    renter_id: int,
    allowance_id: int | None,
    ref: str,
    process: str,
    need: int,
    chunk: int,
    now: datetime,
) -> Taken:
    """Hold ``chunk`` (or ``need`` if more) for the allowance, opening it if ``allowance_id`` is None; a
    renter with less than that gives all they have, and InsufficientFunds (402) only when that is less
    than ``need``. Raises AllowanceClosed when the allowance to top up was closed meanwhile."""
    available = await _available_locked(session, renter_id)
    if available < need:
        raise InsufficientFunds(account=Account.renter_available, needed=need, available=available)
    amount = min(max(chunk, need), available)
    if allowance_id is None:
        values = {
            "reference": ref,
            "renter_id": renter_id,
            "process": process,
            "held_halala": amount,
            "spent_halala": 0,
            "opened_at": now,
            "renewed_at": now,
        }
        allowance_id = int((await session.execute(_OPEN, values)).scalar_one())
        key = f"hold:{ref}"
    else:
        params = {"p_id": allowance_id, "p_amount": amount, "p_now": now}
        held = (await session.execute(_TOP_UP, params)).scalar_one_or_none()
        if held is None:
            raise AllowanceClosed(ref)
        key = f"hold:{ref}:{held}"  # the running total: unique per top-up
    legs = [Leg(Account.renter_available, renter_id, -amount), Leg(Account.renter_held, renter_id, amount)]
    await ledger.post_many(session, [ledger.Posting(TxKind.hold, ref, key, legs, now)])
    return Taken(allowance_id, amount)


async def _available_locked(session: AsyncSession, renter_id: int) -> int:
    # Locked (PostgreSQL; SQLite's writer holds the database) so the amount taken is the amount read.
    found = await session.execute(
        select(LedgerAccount.balance)
        .where(LedgerAccount.kind == Account.renter_available, LedgerAccount.owner_id == renter_id)
        .with_for_update()
    )
    return int(found.scalar_one_or_none() or 0)


async def charge(session: AsyncSession, spent: dict[int, int]) -> set[int]:
    """Record what settled requests drew from each allowance; returns the allowances that took it. One that
    is closed (or, never expected, would go past its holds) takes nothing: its requests are billed nothing."""
    taken: set[int] = set()
    for allowance_id in sorted(spent):  # rows in id order: two writers never deadlock
        params = {"p_id": allowance_id, "p_amount": spent[allowance_id]}
        if (await session.execute(_CHARGE, params)).scalar_one_or_none() is not None:
            taken.add(allowance_id)
    return taken


async def close(session: AsyncSession, allowance_ids: list[int], *, now: datetime, reason: str) -> int:
    """Close the allowances still open among ``allowance_ids`` and release what they did not spend to
    their renters, once each (the release takes the allowance's finish key). Returns the halala released."""
    postings = []
    for allowance_id in sorted(allowance_ids):
        params = {"p_id": allowance_id, "p_now": now, "p_reason": reason[:100]}
        closed = (await session.execute(_CLOSE, params)).one_or_none()
        if closed is None:
            continue
        renter_id, ref, rest = closed
        if rest > 0:
            legs = [
                Leg(Account.renter_held, renter_id, -rest),
                Leg(Account.renter_available, renter_id, rest),
            ]
            postings.append(ledger.Posting(TxKind.release, ref, f"finish:{ref}", legs, now, reason[:100]))
    await ledger.post_many(session, postings)
    return sum(-posting.legs[0].amount for posting in postings)


async def renew(session: AsyncSession, allowance_ids: list[int], *, now: datetime) -> set[int]:
    """Mark the allowances as still in use by their process; returns those still open."""
    renewed = await session.execute(
        update(GatewayAllowance)
        .where(GatewayAllowance.id.in_(allowance_ids), GatewayAllowance.closed_at.is_(None))
        .values(renewed_at=now)
        .returning(GatewayAllowance.id)
    )
    return set(renewed.scalars())


async def stale(session: AsyncSession, *, before: datetime, limit: int) -> list[int]:
    """Open allowances whose process has not renewed them since ``before`` (it died or stalled)."""
    found = await session.execute(
        select(GatewayAllowance.id)
        .where(GatewayAllowance.closed_at.is_(None), GatewayAllowance.renewed_at < before)
        .order_by(GatewayAllowance.id)
        .limit(limit)
    )
    return list(found.scalars())
