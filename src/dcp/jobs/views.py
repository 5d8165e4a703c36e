"""How jobs look to their renter, provider and admins: the seed's job object and output body."""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing.settlement import settlement_of
from dcp.jobs import repository
from dcp.jobs.schemas import Billing, JobList, JobOutput, JobView
from dcp.kit.clock import iso
from dcp.kit.errors import BadRequest
from dcp.kit.pagination import Page
from dcp.models import Job, Settlement
from dcp.models.job import ACTIVE_STATUSES, TERMINAL_STATUSES

MAX_ACTIVE_SHOWN = 50
OUTPUT_TYPES = {
    "llm_inference": "text",
    "image_generation": "image",
    "vllm_serve": "endpoint",
    "custom_container": "container",
}


async def job_view(session: AsyncSession, job: Job) -> JobView:
    # Work is settled or refunded only once it has ended: an open job has nothing to look up.
    settled = await settlement_of(session, job.job_id) if job.status in TERMINAL_STATUSES else None
    return describe(job, settled=settled, queue_position=await repository.queue_position(session, job))


def describe(job: Job, *, settled: Settlement | None, queue_position: int | None) -> JobView:
    """The seed's job object, from what its callers looked up."""
    return JobView(
        id=job.id,
        job_id=job.job_id,
        provider_id=job.provider_id,
        renter_id=job.renter_id,
        job_type=job.job_type,
        model=job.model,
        status=job.status,
        submitted_at=iso(job.submitted_at),
        started_at=iso(job.started_at),
        completed_at=iso(job.finished_at),
        duration_minutes=job.duration_minutes,
        cost_halala=job.cost_halala,
        actual_cost_halala=settled.cost_halala if settled else None,
        refunded_halala=settled.refunded_halala if settled else None,
        max_duration_seconds=job.max_duration_seconds,
        timeout_at=iso(job.timeout_at),
        gpu_requirements=job.gpu_requirements,
        container_spec=job.container_spec,
        workspace_volume_name=f"dcp-job-{job.job_id}",
        priority=job.priority,
        pricing_class=job.pricing_class,
        queue_position=queue_position,
        progress=job.progress,
        attempts=job.attempts,
        error=job.error,
    )


def output(job: Job, settled: Settlement | None) -> JobOutput:
    result = dict(job.result or {})
    if job.tokens_generated is not None:  # where the seed's pipeline reads it: result.tokens_generated
        result["tokens_generated"] = job.tokens_generated  # the capped count, not what the provider wrote
    actual = settled.cost_halala if settled else 0
    return JobOutput(
        job_id=job.job_id,
        status=job.status,
        type=OUTPUT_TYPES[job.job_type],
        result=result,
        response=result.get("response"),
        tokens_generated=job.tokens_generated,
        execution_time_ms=job.execution_time_ms,
        billing=Billing(
            quoted_halala=job.cost_halala,
            actual_cost_halala=actual,
            refunded_halala=settled.refunded_halala if settled else 0,
        ),
        actual_cost_halala=actual,
    )


async def job_list(
    session: AsyncSession,
    *,
    owner: ColumnElement[bool],
    filters: list[ColumnElement[bool]],
    page: Page,
    before: str | None,
) -> JobList:
    """A page of the jobs of a renter or a provider (``owner``), newest first, older than ``before`` if
    given."""
    cursor = None
    if before is not None:
        cursor = await repository.row_id(session, job_id=before, owner=owner)
        if cursor is None:
            raise BadRequest(f"Invalid before: no job {before} of yours")
    found, total = await repository.listing(
        session, where=[owner, *filters], limit=page.limit, offset=page.offset, before=cursor
    )
    return JobList(
        jobs=[await job_view(session, job) for job in found],
        total=total,
        limit=page.limit,
        offset=page.offset,
        next_before=found[-1].job_id if len(found) == page.limit else None,
    )


async def active_on(session: AsyncSession, provider_id: int) -> list[JobView]:
    """The jobs a provider holds now (leased or running), newest first (as many as a page holds)."""
    where = [Job.provider_id == provider_id, Job.status.in_(ACTIVE_STATUSES)]
    jobs, _ = await repository.listing(session, where=where, limit=MAX_ACTIVE_SHOWN, offset=0)
    return [await job_view(session, job) for job in jobs]


async def recent(
    session: AsyncSession, *, renter_id: int | None = None, provider_id: int | None = None, limit: int = 5
) -> tuple[list[JobView], int]:
    """The newest jobs of a renter or of a provider, and how many they have in all."""
    column = Job.renter_id if renter_id is not None else Job.provider_id
    owner = renter_id if renter_id is not None else provider_id
    jobs, total = await repository.listing(session, where=[column == owner], limit=limit, offset=0)
    return [await job_view(session, job) for job in jobs], total
