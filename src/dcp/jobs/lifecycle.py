"""Every way a job changes state after submit. Each ending moves money through the one settle or refund.

A transition is one conditional UPDATE from the states it may leave, so of two racing endings (a result
arriving as its lease times out, a cancel during completion) exactly one wins; the loser changes nothing.
An ended job keeps its last lease token, so a provider retrying a result it already delivered is told
the final state instead of an error.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import settlement
from dcp.billing.pricing import cost_of_run
from dcp.config import Settings
from dcp.models import Job, Provider
from dcp.models.job import ACTIVE_STATUSES, OPEN_STATUSES


async def _transition(
    session: AsyncSession, job: Job, *, allowed_from: tuple[str, ...], **values: Any
) -> bool:
    changed = await session.execute(
        update(Job).where(Job.id == job.id, Job.status.in_(allowed_from)).values(**values).returning(Job.id)
    )
    if changed.scalar_one_or_none() is None:
        return False
    await session.refresh(job)
    return True


def run_seconds(job: Job, now: datetime) -> int:
    """Server-measured run time, from start (or lease) to now, in whole seconds begun (a job of 0.8 s is
    billed a second, not nothing), never beyond the job's hard limit."""
    began = job.started_at or job.assigned_at
    if began is None:
        return 0
    return max(0, min(math.ceil((now - began).total_seconds()), job.max_duration_seconds))


def cost_so_far(job: Job, now: datetime) -> int:
    return cost_of_run(
        per_minute=job.per_minute_halala,
        seconds=run_seconds(job, now),
        percent=job.class_percent,
        cap=job.cost_halala,
    )


async def _bill(session: AsyncSession, job: Job, *, now: datetime, settings: Settings) -> None:
    if job.provider_id is None:
        raise RuntimeError(f"{job.job_id} ran on no provider")
    await settlement.settle(
        session,
        renter_id=job.renter_id,
        provider_id=job.provider_id,
        work_ref=job.job_id,
        cost=cost_so_far(job, now),
        provider_percent=settings.pricing.provider_share_percent,
        now=now,
    )


async def _refund(session: AsyncSession, job: Job, *, reason: str, now: datetime) -> None:
    await settlement.refund(
        session,
        renter_id=job.renter_id,
        provider_id=job.provider_id,
        work_ref=job.job_id,
        reason=reason,
        now=now,
    )


async def start(session: AsyncSession, job: Job, *, now: datetime, lease_until: datetime) -> bool:
    return await _transition(
        session,
        job,
        allowed_from=("assigned",),
        status="running",
        started_at=now,
        lease_expires_at=lease_until,
        run_deadline=now + timedelta(seconds=job.max_duration_seconds),
    )


async def complete(
    session: AsyncSession,
    job: Job,
    *,
    now: datetime,
    settings: Settings,
    result: dict[str, Any],
    tokens_generated: int | None,
    execution_time_ms: int | None,
) -> bool:
    ended = await _transition(
        session,
        job,
        allowed_from=ACTIVE_STATUSES,
        status="completed",
        finished_at=now,
        result=result,
        tokens_generated=tokens_generated,
        execution_time_ms=execution_time_ms,
        progress=100,
    )
    if ended:
        await _bill(session, job, now=now, settings=settings)
        await _count(session, job.provider_id, completed=True)
    return ended


async def fail(
    session: AsyncSession, job: Job, *, now: datetime, settings: Settings, error: str, bill_run: bool
) -> bool:
    """End a job as failed: refunded in full, or billed for the time it ran (``bill_run``: it ran out its
    time, or its own program failed)."""
    ended = await _transition(
        session,
        job,
        allowed_from=OPEN_STATUSES,
        status="failed",
        finished_at=now,
        error=error[:2000],
    )
    if not ended:
        return False
    if bill_run and job.provider_id is not None:
        await _bill(session, job, now=now, settings=settings)
    else:
        await _refund(session, job, reason=error, now=now)
    return True


async def cancel(session: AsyncSession, job: Job, *, now: datetime, settings: Settings) -> bool:
    """Cancelled before it ran: full refund. Cancelled while running: billed for the time it ran."""
    ended = await _transition(
        session,
        job,
        allowed_from=OPEN_STATUSES,
        status="cancelled",
        finished_at=now,
        error="cancelled by the renter",
    )
    if not ended:
        return False
    # Decided on the row the cancel ended, not on ``job`` as read before: a start (or a requeue) may have
    # been committed in between, and PostgreSQL's UPDATE ends the job as it is now.
    if job.started_at is not None:
        await _bill(session, job, now=now, settings=settings)
    else:
        await _refund(session, job, reason="cancelled before it ran", now=now)
    return True


async def lease_lost(
    session: AsyncSession, job: Job, *, now: datetime, settings: Settings, exclude: bool = True
) -> str:
    """The provider stopped renewing its lease (or its daemon says it was cut off: ``exclude`` False, as it
    may take the job again once restarted): requeue the job, or fail it when out of retries.

    Returns the job's new status, or "" when another ending won the race.
    """
    lost_on = job.provider_id
    if job.attempts > settings.jobs.max_retries:
        failed = await fail(
            session,
            job,
            now=now,
            settings=settings,
            bill_run=False,
            error=f"The provider stopped responding; the retry budget ({settings.jobs.max_retries}) is spent",
        )
        if failed:
            await _count(session, lost_on, completed=False)
        return "failed" if failed else ""
    excluded = job.excluded_providers
    if exclude and lost_on is not None:
        excluded = [*excluded, lost_on]
    requeued = await _transition(
        session,
        job,
        allowed_from=ACTIVE_STATUSES,
        status="pending",
        lease_token=None,
        lease_expires_at=None,
        assigned_at=None,
        started_at=None,
        run_deadline=None,
        progress=0,
        excluded_providers=excluded,
        provider_id=job.requested_provider_id,
    )
    if requeued:
        await _count(session, lost_on, completed=False)
    return "pending" if requeued else ""


async def _count(session: AsyncSession, provider_id: int | None, *, completed: bool) -> None:
    if provider_id is None:
        return
    column = Provider.jobs_completed if completed else Provider.jobs_lost
    await session.execute(update(Provider).where(Provider.id == provider_id).values({column: column + 1}))
