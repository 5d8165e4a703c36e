"""Uptime: each heartbeat credits the time since the previous one (up to the liveness threshold) to today,
and the online share of the last 30 days is read back from those daily sums."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dcp.models import Provider, ProviderUptime

WINDOW = timedelta(days=30)
_IN_LIST_LIMIT = 500


def credited_seconds(previous: datetime | None, now: datetime, *, threshold_seconds: int) -> int:
    """What a heartbeat at ``now`` credits: the time since the previous one, of which a gap longer than the
    threshold counts only the threshold (the rest was time offline)."""
    if previous is None:
        return 0
    return int(min(max((now - previous).total_seconds(), 0), threshold_seconds))


def _upsert(insert: Callable[[Table], Any]) -> Any:
    table = cast(Table, ProviderUptime.__table__)
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.provider_id, table.c.day],
        set_={"seconds": table.c.seconds + statement.excluded.seconds},
    )


# Built once: a heartbeat batch runs one, and building it (its EXCLUDED alias) cost more than running it.
_UPSERTS = {"postgresql": _upsert(postgresql.insert), "sqlite": _upsert(sqlite.insert)}


async def credit(connection: AsyncConnection, credits: dict[tuple[int, date], int]) -> None:
    """Add seconds to (provider, day) rows in one upsert; no row is read first."""
    if not credits:
        return
    rows = [{"provider_id": p, "day": day, "seconds": seconds} for (p, day), seconds in credits.items()]
    await connection.execute(_UPSERTS[connection.dialect.name], rows)


async def online_shares(
    session: AsyncSession, providers: list[Provider], *, now: datetime, threshold_seconds: int
) -> dict[int, float]:
    """Share of the last 30 days (or of the time since its first heartbeat) each provider was online."""
    online = await window_seconds(session, [p.id for p in providers], now=now)
    return {
        p.id: share(
            online.get(p.id, 0),
            p.first_heartbeat_at,
            p.last_heartbeat_at,
            now=now,
            threshold_seconds=threshold_seconds,
        )
        for p in providers
    }


async def window_seconds(
    session: AsyncSession, provider_ids: list[int] | None, *, now: datetime
) -> dict[int, int]:
    """Seconds credited to each provider (all of them for None) over the last 30 days. For a large fleet
    every provider's days are summed in one pass: an IN list of thousands of ids cost more than the rows
    it skipped."""
    if provider_ids is not None and not provider_ids:
        return {}
    query = (
        select(ProviderUptime.provider_id, func.sum(ProviderUptime.seconds))
        .where(ProviderUptime.day >= (now - WINDOW).date())
        .group_by(ProviderUptime.provider_id)
    )
    if provider_ids is not None and len(provider_ids) <= _IN_LIST_LIMIT:
        query = query.where(ProviderUptime.provider_id.in_(provider_ids))
    return {provider_id: int(seconds) for provider_id, seconds in await session.execute(query)}


def share(
    online_seconds: int,
    first: datetime | None,
    last: datetime | None,
    *,
    now: datetime,
    threshold_seconds: int,
) -> float:
    """The online share from the window's credited seconds; the time since the latest heartbeat counts up
    to the threshold, as the next heartbeat will credit it."""
    if first is None or last is None:
        return 0.0
    span = (now - max(first, now - WINDOW)).total_seconds()
    pending = min(threshold_seconds, max((now - last).total_seconds(), 0))
    return 1.0 if span <= 0 else min(1.0, (online_seconds + pending) / span)
