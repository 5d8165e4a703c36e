"""Uptime: each heartbeat credits the time since the previous one (up to the liveness threshold) to today,
and the online share of the last 30 days is read back from those daily sums."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.models import Provider, ProviderUptime

WINDOW = timedelta(days=30)
_IN_LIST_LIMIT = 500


async def credit(session: AsyncSession, provider: Provider, *, now: datetime, threshold_seconds: int) -> None:
    """Call before the heartbeat's time is recorded: a gap longer than the threshold was time offline."""
    previous = provider.last_heartbeat_at
    if previous is None:
        return
    seconds = int(min(max((now - previous).total_seconds(), 0), threshold_seconds))
    if seconds == 0:
        return
    day = now.date()
    added = await session.execute(
        update(ProviderUptime)
        .where(ProviderUptime.provider_id == provider.id, ProviderUptime.day == day)
        .values(seconds=ProviderUptime.seconds + seconds)
        .returning(ProviderUptime.day)
    )
    if added.scalar_one_or_none() is not None:
        return
    try:
        async with session.begin_nested():
            session.add(ProviderUptime(provider_id=provider.id, day=day, seconds=seconds))
    except IntegrityError:  # a concurrent heartbeat opened today's row first
        await session.execute(
            update(ProviderUptime)
            .where(ProviderUptime.provider_id == provider.id, ProviderUptime.day == day)
            .values(seconds=ProviderUptime.seconds + seconds)
        )


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
