"""Queries on renters."""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.models import Renter


async def by_email(session: AsyncSession, email: str) -> Renter | None:
    found = await session.execute(select(Renter).where(Renter.email == email))
    return found.scalar_one_or_none()


async def by_id(session: AsyncSession, renter_id: int) -> Renter | None:
    return await session.get(Renter, renter_id)


async def listing(
    session: AsyncSession, *, where: list[ColumnElement[bool]], limit: int, offset: int
) -> tuple[list[Renter], int]:
    query = select(Renter).where(*where)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = await session.execute(query.order_by(Renter.id.desc()).limit(limit).offset(offset))
    return list(page.scalars()), total


def search_clause(text: str) -> ColumnElement[bool]:
    """``text`` within the name, email or organisation, literally (``%`` and ``_`` are not wildcards)."""
    text = text.lower()
    return or_(
        func.lower(Renter.name).contains(text, autoescape=True),
        func.lower(Renter.email).contains(text, autoescape=True),
        func.lower(func.coalesce(Renter.organization, "")).contains(text, autoescape=True),
    )
