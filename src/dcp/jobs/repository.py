"""Queries on jobs: lookups, listings, queue positions and provider load."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.models import Job
from dcp.models.job import ACTIVE_STATUSES


async def by_job_id(session: AsyncSession, job_id: str) -> Job | None:
    found = await session.execute(select(Job).where(Job.job_id == job_id))
    return found.scalar_one_or_none()


async def by_idempotency_key(session: AsyncSession, renter_id: int, key: str) -> Job | None:
    found = await session.execute(select(Job).where(Job.renter_id == renter_id, Job.idempotency_key == key))
    return found.scalar_one_or_none()


async def row_id(session: AsyncSession, *, job_id: str, owner: ColumnElement[bool]) -> int | None:
    """The database id of the job ``job_id``, if ``owner`` (its renter or provider) holds for it."""
    found = await session.execute(select(Job.id).where(Job.job_id == job_id, owner))
    return found.scalar_one_or_none()


async def listing(
    session: AsyncSession,
    *,
    where: list[ColumnElement[bool]],
    limit: int,
    offset: int,
    before: int | None = None,
) -> tuple[list[Job], int]:
    """A page of jobs, newest first (only those older than the job of id ``before``, when given), and the
    total that match ``where``."""
    query = select(Job).where(*where)
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    if before is not None:
        query = query.where(Job.id < before)
    page = await session.execute(query.order_by(Job.id.desc()).limit(limit).offset(offset))
    return list(page.scalars()), total


async def active_counts(session: AsyncSession, provider_ids: list[int]) -> dict[int, int]:
    """Jobs each provider holds now (leased or running)."""
    if not provider_ids:
        return {}
    rows = await session.execute(
        select(Job.provider_id, func.count(Job.id))
        .where(Job.status.in_(ACTIVE_STATUSES), Job.provider_id.in_(provider_ids))
        .group_by(Job.provider_id)
    )
    counts = {provider: int(count) for provider, count in rows}
    return {provider: counts.get(provider, 0) for provider in provider_ids}


# Jobs ahead are counted up to 1,000, so a job further back reads as 1,001: counting every waiting job cost
# 1-2 ms per status read and per submit batch with 10,000 waiting (bench submit), and grew with the queue.
QUEUE_POSITION_CAP = 1_001


async def queue_position(session: AsyncSession, job: Job) -> int | None:
    """1 for the next job to be claimed in its queue, at most ``QUEUE_POSITION_CAP``; None once the job left
    the queue."""
    if job.status != "pending":
        return None
    ahead = or_(Job.priority > job.priority, and_(Job.priority == job.priority, Job.id < job.id))
    same_queue = (
        Job.provider_id == job.provider_id if job.provider_id is not None else Job.provider_id.is_(None)
    )
    counted = (
        select(Job.id)
        .where(Job.status == "pending", same_queue, ahead)
        .limit(QUEUE_POSITION_CAP - 1)
        .subquery()
    )
    found = await session.execute(select(func.count()).select_from(counted))
    return int(found.scalar_one()) + 1


async def counts_by_renter(session: AsyncSession, renter_ids: list[int]) -> dict[int, int]:
    if not renter_ids:
        return {}
    rows = await session.execute(
        select(Job.renter_id, func.count(Job.id)).where(Job.renter_id.in_(renter_ids)).group_by(Job.renter_id)
    )
    counts = {renter: int(count) for renter, count in rows}
    return {renter: counts.get(renter, 0) for renter in renter_ids}
