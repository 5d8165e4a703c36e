"""Queries on providers and their telemetry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.models import Provider, ProviderHeartbeat


async def by_email(session: AsyncSession, email: str) -> Provider | None:
    found = await session.execute(select(Provider).where(Provider.email == email))
    return found.scalar_one_or_none()


async def by_id(session: AsyncSession, provider_id: int) -> Provider | None:
    return await session.get(Provider, provider_id)


RECENTLY_SEEN = (Provider.last_heartbeat_at.desc().nulls_last(), Provider.id.asc())
IN_ID_ORDER = (Provider.id.asc(),)


async def listing(
    session: AsyncSession,
    *,
    where: list[ColumnElement[bool]],
    limit: int,
    offset: int,
    order: tuple[ColumnElement[Any], ...] = RECENTLY_SEEN,
    after: int | None = None,
) -> tuple[list[Provider], int]:
    """A page of providers in ``order`` (only those of ids above ``after``, when given: for listings in id
    order), and the total that match ``where``."""
    query = select(Provider).where(*where)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    if after is not None:
        query = query.where(Provider.id > after)
    page = await session.execute(query.order_by(*order).limit(limit).offset(offset))
    return list(page.scalars()), total


def search_clause(text: str) -> ColumnElement[bool]:
    """``text`` within the name, email or GPU model, literally (``%`` and ``_`` are not wildcards)."""
    text = text.lower()
    return or_(
        func.lower(Provider.name).contains(text, autoescape=True),
        func.lower(Provider.email).contains(text, autoescape=True),
        func.lower(Provider.gpu_model).contains(text, autoescape=True),
    )


async def telemetry(session: AsyncSession, provider_id: int, *, since: datetime) -> list[ProviderHeartbeat]:
    """The provider's telemetry samples since ``since``, oldest first."""
    found = await session.execute(
        select(ProviderHeartbeat)
        .where(ProviderHeartbeat.provider_id == provider_id, ProviderHeartbeat.received_at >= since)
        .order_by(ProviderHeartbeat.received_at)
    )
    return list(found.scalars())
