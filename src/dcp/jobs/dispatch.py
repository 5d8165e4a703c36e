"""The provider's side of a job: claim it under a lease, receive a signed spec, report progress and result."""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.config import Settings
from dcp.jobs import lifecycle, repository
from dcp.jobs.errors import JobNotFound, StaleLease
from dcp.kit.clock import iso
from dcp.kit.signing import sign
from dcp.models import Job, Provider
from dcp.models.job import ACTIVE_STATUSES, TERMINAL_STATUSES

PROTOCOL = "dcp-task/1"
_CLAIM_WINDOW = 20


async def claim_next(
    session: AsyncSession, *, provider: Provider, now: datetime, settings: Settings
) -> Job | None:
    """Lease the next job this provider may run (its own queue and the shared one, by priority then age)."""
    if provider.approval_status != "approved" or provider.paused:
        return None
    if (await repository.active_counts(session, [provider.id]))[provider.id] >= provider.slots:
        return None
    shared = and_(
        Job.provider_id.is_(None),
        Job.requested_provider_id.is_(None),
        Job.min_vram_mib <= (provider.gpu_vram_mib or 0),
    )
    window = await session.execute(
        select(Job.id, Job.provider_id, Job.excluded_providers, Job.gpu_model)
        .where(Job.status == "pending", or_(Job.provider_id == provider.id, shared))
        .order_by(Job.priority.desc(), Job.id)
        .limit(_CLAIM_WINDOW)
        .with_for_update(skip_locked=True)  # PostgreSQL: replicas skip rows another is claiming
    )
    names = f"{provider.gpu_model} {provider.gpu_name or ''}".lower()
    for job_id, placed_on, excluded, gpu_model in window:
        if placed_on is None and (provider.id in excluded or (gpu_model and gpu_model.lower() not in names)):
            continue
        claimed = await session.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "pending")
            .values(
                status="assigned",
                provider_id=provider.id,
                lease_token=secrets.token_urlsafe(24),
                lease_expires_at=now + timedelta(seconds=settings.jobs.lease_seconds),
                assigned_at=now,
                attempts=Job.attempts + 1,
            )
            .returning(Job)
        )
        if (job := claimed.scalar_one_or_none()) is not None:
            return job
    return None


def signed_task(job: Job, provider: Provider) -> dict[str, Any]:
    """What the daemon receives: the spec, and its HMAC under the provider's own signing key."""
    spec = {
        "protocol": PROTOCOL,
        "job_id": job.job_id,
        "provider_id": provider.id,
        "job_type": job.job_type,
        "model": job.model,
        "params": job.params,
        "container_spec": job.container_spec,
        "max_duration_seconds": job.max_duration_seconds,
        "lease_token": job.lease_token,
        "expires_at": iso(job.lease_expires_at),
    }
    return {"spec": spec, "signature": sign(spec, provider.signing_key)}


async def leased_job(
    session: AsyncSession,
    *,
    job_id: str,
    provider: Provider,
    lease_token: str,
    finished_ok: bool = False,
) -> Job:
    """The job, if this provider holds its lease; 404 if it is not theirs, 409 if the lease is stale. A lease
    past its expiry still holds until the sweeper hands the job on: a daemon back from an outage (its own, or
    the servers') delivers the work it finished, or renews.

    With ``finished_ok``, a job that already ended under this same lease is returned too (a retried result).
    """
    job = await repository.by_job_id(session, job_id)
    if job is None:
        raise JobNotFound()
    if job.provider_id != provider.id:
        if provider.id in job.excluded_providers:  # it held this job once and lost the lease
            raise StaleLease()
        raise JobNotFound()
    same_lease = hmac.compare_digest((job.lease_token or "").encode(), lease_token.encode())
    if same_lease and (job.status in ACTIVE_STATUSES or (finished_ok and job.status in TERMINAL_STATUSES)):
        return job
    raise StaleLease()


async def renew(
    session: AsyncSession, job: Job, *, now: datetime, settings: Settings, progress: int | None
) -> None:
    values: dict[str, Any] = {"lease_expires_at": now + timedelta(seconds=settings.jobs.lease_seconds)}
    if progress is not None:
        values["progress"] = progress
    await session.execute(update(Job).where(Job.id == job.id).values(**values))
    await session.refresh(job)


async def start(session: AsyncSession, job: Job, *, now: datetime, settings: Settings) -> None:
    await lifecycle.start(
        session, job, now=now, lease_until=now + timedelta(seconds=settings.jobs.lease_seconds)
    )
