"""The public marketplace listing: approved providers with their live state and prices."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing.pricing import effective_prices
from dcp.config import PricingSettings, Settings
from dcp.jobs.placement import reliability_percent
from dcp.kit.clock import iso
from dcp.models import Provider
from dcp.providers import repository, uptime
from dcp.providers.liveness import is_online, online_clause, status_of
from dcp.providers.schemas import MarketListing, MarketProvider

_MIB_PER_GIB = 1024


async def listing(
    session: AsyncSession,
    *,
    settings: Settings,
    now: datetime,
    live_only: bool,
    min_vram_gb: int | None,
    gpu_model: str | None,
    limit: int,
    offset: int,
    after: int | None = None,
) -> MarketListing:
    """Approved providers (live ones only if asked) in id order, so that a cursor (``after``, the previous
    page's last id) pages through providers coming and going without skipping or repeating one."""
    threshold = settings.heartbeat_online_seconds
    where: list[ColumnElement[bool]] = [Provider.approval_status == "approved"]
    if live_only:
        where += [online_clause(now=now, threshold_seconds=threshold), Provider.paused.is_(False)]
    if min_vram_gb is not None:
        where.append(func.coalesce(Provider.gpu_vram_mib, 0) >= min_vram_gb * _MIB_PER_GIB)
    if gpu_model:
        text = gpu_model.lower()
        where.append(
            func.lower(Provider.gpu_model).contains(text, autoescape=True)
            | func.lower(func.coalesce(Provider.gpu_name, "")).contains(text, autoescape=True)
        )
    providers, total = await repository.listing(
        session, where=where, limit=limit, offset=offset, order=repository.IN_ID_ORDER, after=after
    )
    shares = await uptime.online_shares(session, providers, now=now, threshold_seconds=threshold)
    return MarketListing(
        providers=[
            _item(
                p,
                pricing=settings.pricing,
                now=now,
                threshold=threshold,
                reliability=reliability_percent(p, shares[p.id]),
            )
            for p in providers
        ],
        total=total,
        limit=limit,
        offset=offset,
        next_after=providers[-1].id if len(providers) == limit else None,
    )


def _item(
    provider: Provider, *, pricing: PricingSettings, now: datetime, threshold: int, reliability: int
) -> MarketProvider:
    state = status_of(provider, now=now, threshold_seconds=threshold)
    return MarketProvider(
        id=provider.id,
        name=provider.name,
        gpu_model=provider.gpu_model,
        gpu_name=provider.gpu_name,
        gpu_count=provider.gpu_count,
        vram_gb=((provider.gpu_vram_mib or 0) + _MIB_PER_GIB // 2) // _MIB_PER_GIB,
        vram_mib=provider.gpu_vram_mib,
        is_live=state == "online" and is_online(provider, now=now, threshold_seconds=threshold),
        status=state,
        cached_models=provider.cached_models,
        price_per_minute_halala=effective_prices(pricing, provider.prices),
        reliability_pct=reliability,
        last_heartbeat=iso(provider.last_heartbeat_at),
    )
