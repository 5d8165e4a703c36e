"""Queries of the admin pages: jobs and revenue counted per day, providers named by id."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing.ledger import Account, TxKind
from dcp.billing.reports import Revenue
from dcp.models import Job, LedgerAccount, LedgerEntry, LedgerTransaction, Provider


def _day_index(column: Any, starts: Sequence[datetime]) -> ColumnElement[int]:
    """Which of the days starting at ``starts`` (oldest first) ``column`` falls on, in SQL both databases run.

    Comparing with each day's start (rather than converting time zones in SQL) keeps SQLite and PostgreSQL
    alike and stays right across daylight-saving changes wherever the operators are.
    """
    latest_first = reversed(list(enumerate(starts)))
    return case(*((column >= start, index) for index, start in latest_first)).label("day")


async def jobs_per_day(
    session: AsyncSession, starts: Sequence[datetime], *, completed: bool = False
) -> dict[int, int]:
    """Jobs submitted (or, with ``completed``, finished successfully) on each day: ``day index → count``."""
    column = Job.finished_at if completed else Job.submitted_at
    query = select(_day_index(column, starts)).where(column >= starts[0])
    if completed:
        query = query.where(Job.status == "completed")
    # Grouping by the subquery's column, not the CASE itself: PostgreSQL would see two different
    # expressions in SELECT and GROUP BY, each with its own bound parameters.
    days = query.subquery()
    rows = await session.execute(select(days.c.day, func.count()).group_by(days.c.day))
    return {int(day): int(count) for day, count in rows}


async def revenue_per_day(session: AsyncSession, starts: Sequence[datetime]) -> dict[int, Revenue]:
    """What renters paid for finished work on each day, and the platform's part: ``day index → Revenue``."""
    entries = (
        select(
            _day_index(LedgerTransaction.created_at, starts),
            LedgerAccount.kind.label("kind"),
            LedgerEntry.amount.label("amount"),
        )
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerTransaction.kind == TxKind.charge,
            LedgerAccount.kind.in_([Account.provider_earnings, Account.platform_fees]),
            LedgerTransaction.created_at >= starts[0],
        )
        .subquery()
    )
    rows = await session.execute(
        select(entries.c.day, entries.c.kind, func.sum(entries.c.amount)).group_by(
            entries.c.day, entries.c.kind
        )
    )
    parts: dict[int, dict[str, int]] = {}
    for day, kind, amount in rows:
        parts.setdefault(int(day), {})[kind] = int(amount)
    return {
        day: Revenue(gross=sum(by_kind.values()), fees=by_kind.get(Account.platform_fees, 0))
        for day, by_kind in parts.items()
    }


async def provider_names(session: AsyncSession, provider_ids: Collection[int]) -> dict[int, str]:
    """``provider id → name`` for the ids given (lists of withdrawals name who asked)."""
    if not provider_ids:
        return {}
    rows = await session.execute(select(Provider.id, Provider.name).where(Provider.id.in_(provider_ids)))
    return {int(provider_id): name for provider_id, name in rows}
