"""Uptime: each heartbeat credits the time since the previous one (up to the liveness threshold) to today,
and the online share of the last 30 days is read back from those daily sums."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.models import Provider, ProviderUptime

WINDOW = timedelta(days=30)


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
    """Share of the last 30 days (or of the time since its first heartbeat) each provider was online; the
    time since its latest heartbeat counts up to the threshold, as the next heartbeat will credit it."""
    if not providers:
        return {}
    since = now - WINDOW
    rows = await session.execute(
        select(ProviderUptime.provider_id, func.sum(ProviderUptime.seconds))
        .where(ProviderUptime.provider_id.in_([p.id for p in providers]), ProviderUptime.day >= since.date())
        .group_by(ProviderUptime.provider_id)
    )
    online = {provider_id: int(seconds) for provider_id, seconds in rows}
    shares = {}
    for provider in providers:
        first, last = provider.first_heartbeat_at, provider.last_heartbeat_at
        if first is None or last is None:
            shares[provider.id] = 0.0
            continue
        span = (now - max(first, since)).total_seconds()
        pending = min(threshold_seconds, max((now - last).total_seconds(), 0))
        shares[provider.id] = 1.0 if span <= 0 else min(1.0, (online.get(provider.id, 0) + pending) / span)
    return shares
