"""The sweep: leases that expired, jobs past their limits, queues of providers that left.

Idempotent and safe on every replica at once: rows are claimed with SKIP LOCKED on PostgreSQL (SQLite
serialises writers) and every change is a conditional transition, so two sweeps never act twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.config import Settings
from dcp.db.engine import Database
from dcp.gateway import allowance, billing
from dcp.jobs import lifecycle, placement
from dcp.jobs.events import EventHub
from dcp.models import Job, Provider, ProviderHeartbeat
from dcp.models.job import ACTIVE_STATUSES
from dcp.providers.liveness import online_clause

log = logging.getLogger("dcp.sweeper")
_BATCH = 200
_RELIABILITY_BATCH = 1000


@dataclass
class SweepReport:
    changed: dict[str, str] = field(default_factory=dict)  # job_id → new status
    moved: int = 0
    pruned: int = 0


async def sweep_once(
    db: Database, *, settings: Settings, now: datetime, hub: EventHub, grace: bool = False
) -> SweepReport:
    """One pass: jobs whose leases ran out, or past their limit (neither during a starting server's
    ``grace``), or waiting past their queue deadline; queues of absent providers; old telemetry."""
    report = SweepReport()
    async with db.writer() as session:
        if not grace:
            await _take_back_running_out(session, report, now=now, settings=settings)
        for job in await _due(session, Job.status == "pending", Job.queue_deadline < now):
            error = "No provider became available before the job's queue deadline; refunded"
            if await lifecycle.fail(session, job, now=now, settings=settings, error=error, bill_run=False):
                report.changed[job.job_id] = "failed"
        report.moved = await _release_queues_of_absent_providers(session, now=now, settings=settings)
        report.pruned = await _prune_telemetry(session, now=now, settings=settings)
        await session.commit()
    for job_id, status in report.changed.items():
        hub.publish(job_id, {"type": "status", "status": status})
    if report.changed or report.moved:
        hub.nudge()
    return report


async def _take_back_running_out(
    session: AsyncSession, report: SweepReport, *, now: datetime, settings: Settings
) -> None:
    """Jobs whose leases ran out go back to the queue; jobs past their limit fail, billed for their run."""
    for job in await _due(session, Job.status.in_(ACTIVE_STATUSES), Job.lease_expires_at < now):
        if status := await lifecycle.lease_lost(session, job, now=now, settings=settings):
            report.changed[job.job_id] = status
    for job in await _due(session, Job.status == "running", Job.run_deadline < now):
        error = f"Stopped at its limit of {job.max_duration_seconds} s; billed for the time it ran"
        if await lifecycle.fail(session, job, now=now, settings=settings, error=error, bill_run=True):
            report.changed[job.job_id] = "failed"


async def _due(session: AsyncSession, *where: ColumnElement[bool]) -> Sequence[Job]:
    """A batch of the jobs ``where`` holds, locked (another replica's sweep skips them)."""
    found = await session.execute(select(Job).where(*where).limit(_BATCH).with_for_update(skip_locked=True))
    return found.scalars().all()


async def _release_queues_of_absent_providers(
    session: AsyncSession, *, now: datetime, settings: Settings
) -> int:
    """Auto-placed jobs waiting on a provider that went offline, paused or was suspended go back to the
    shared queue; jobs a renter pinned to that provider keep waiting until their queue deadline."""
    present = select(Provider.id).where(
        Provider.approval_status == "approved",
        Provider.paused.is_(False),
        online_clause(now=now, threshold_seconds=settings.heartbeat_online_seconds),
    )
    moved = await session.execute(
        update(Job)
        .where(
            Job.status == "pending",
            Job.requested_provider_id.is_(None),
            Job.provider_id.is_not(None),
            Job.provider_id.not_in(present),
        )
        .values(provider_id=None)
        .returning(Job.id)
    )
    return len(moved.all())


async def _prune_telemetry(session: AsyncSession, *, now: datetime, settings: Settings) -> int:
    """Drop heartbeat samples older than the retention (uptime keeps its daily sums for reliability)."""
    cutoff = now - timedelta(days=settings.telemetry_retention_days)
    oldest = select(ProviderHeartbeat.id).where(ProviderHeartbeat.received_at < cutoff).limit(5000)
    pruned = await session.execute(delete(ProviderHeartbeat).where(ProviderHeartbeat.id.in_(oldest)))
    return int(pruned.rowcount or 0)  # type: ignore[attr-defined]


async def release_abandoned_holds(
    db: Database, *, settings: Settings, now: datetime, since: datetime | None
) -> tuple[int, datetime]:
    """Refund the holds of /v1 requests that nothing settled within ``abandoned_hold_seconds`` (the process
    serving them died). Looks at holds placed from ``since`` (on a first call, the lookback) on; returns how
    many it refunded and where the next call starts, so that each sweep reads only the newly timed-out."""
    limits = settings.gateway
    before = now - timedelta(seconds=limits.abandoned_hold_seconds)
    start = since or before - timedelta(seconds=limits.abandoned_lookback_seconds)
    async with db.reader() as session:
        found = await billing.abandoned_holds(session, since=start, before=before, limit=_BATCH)
    if found:
        async with db.writer() as session:
            await billing.release_abandoned(session, found, now=now)
            await session.commit()
        log.warning("refunded %d abandoned /v1 holds", len(found))
    return len(found), before if len(found) < _BATCH else found[-1].created_at


async def refresh_reliability(db: Database, *, settings: Settings, now: datetime) -> int:
    """Store each provider's current reliability, the order placement walks (every
    ``jobs.reliability_refresh_seconds``); returns how many changed. Read first, then a short write of
    only the changes, a batch per transaction: the read at 100,000 providers would hold SQLite's write lock
    for seconds."""
    async with db.reader() as session:
        changed = await placement.reliability_changes(
            session, now=now, threshold_seconds=settings.heartbeat_online_seconds
        )
    for first in range(0, len(changed), _RELIABILITY_BATCH):
        async with db.writer() as session:
            await session.execute(update(Provider), changed[first : first + _RELIABILITY_BATCH])
            await session.commit()
    return len(changed)


async def run_forever(
    db: Database, *, settings: Settings, clock: Callable[[], datetime], hub: EventHub, stop: asyncio.Event
) -> None:
    """The server's background sweep loop until ``stop`` is set (never cancelled mid-transaction); a failed
    sweep is logged and retried on the next tick. For a lease after it starts, no job is taken back for its
    lease or its limit having run out: they run out while the servers are down, and their daemons,
    reconnecting, renew them or deliver the work they finished."""
    since: datetime | None = None
    reliability_due = clock()
    grace_until = clock() + timedelta(seconds=settings.jobs.lease_seconds)
    while not stop.is_set():
        try:
            await sweep_once(db, settings=settings, now=clock(), hub=hub, grace=clock() < grace_until)
            _, since = await release_abandoned_holds(db, settings=settings, now=clock(), since=since)
            await allowance.release_stale(db, limits=settings.gateway, now=clock())
            if clock() >= reliability_due:
                await refresh_reliability(db, settings=settings, now=clock())
                reliability_due = clock() + timedelta(seconds=settings.jobs.reliability_refresh_seconds)
        except Exception:
            log.exception("sweep failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.jobs.sweep_interval_seconds)
