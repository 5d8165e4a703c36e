"""Queries on withdrawals."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.models import Withdrawal
from dcp.models.withdrawal import OPEN_STATUSES


async def open_for(session: AsyncSession, provider_id: int) -> Withdrawal | None:
    found = await session.execute(
        select(Withdrawal).where(Withdrawal.provider_id == provider_id, Withdrawal.status.in_(OPEN_STATUSES))
    )
    return found.scalar_one_or_none()


async def by_key(session: AsyncSession, provider_id: int, idempotency_key: str) -> Withdrawal | None:
    found = await session.execute(
        select(Withdrawal).where(
            Withdrawal.provider_id == provider_id, Withdrawal.idempotency_key == idempotency_key
        )
    )
    return found.scalar_one_or_none()


async def listing(
    session: AsyncSession, *, where: list[ColumnElement[bool]], limit: int, offset: int
) -> tuple[list[Withdrawal], int]:
    query = select(Withdrawal).where(*where)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = await session.execute(query.order_by(Withdrawal.id.desc()).limit(limit).offset(offset))
    return list(page.scalars()), total


async def by_status(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """``status → (count, total halala)``."""
    rows = await session.execute(
        select(
            Withdrawal.status, func.count(Withdrawal.id), func.coalesce(func.sum(Withdrawal.amount_halala), 0)
        ).group_by(Withdrawal.status)
    )
    return {status: (int(count), int(amount)) for status, count, amount in rows}


async def transition(
    session: AsyncSession, withdrawal_id: int, *, allowed_from: tuple[str, ...], **values: Any
) -> Withdrawal | None:
    """Change status only from an allowed state, in one conditional UPDATE (safe against a racing admin)."""
    changed = await session.execute(
        update(Withdrawal)
        .where(Withdrawal.id == withdrawal_id, Withdrawal.status.in_(allowed_from))
        .values(**values)
        .returning(Withdrawal.id)
    )
    if changed.scalar_one_or_none() is None:
        return None
    withdrawal = await session.get(Withdrawal, withdrawal_id, populate_existing=True)
    return withdrawal
