"""Provider-facing job endpoints: long-poll for work, start, report events, report the result."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response

from dcp.auth import CurrentProvider
from dcp.db.engine import Database
from dcp.db.session import SessionDep, end_transaction
from dcp.deps import NowDep, SettingsDep
from dcp.jobs import dispatch, endpoint, lifecycle, views
from dcp.jobs.api import JobCursor, hub_of
from dcp.jobs.schemas import Ack, JobEvents, JobList, JobResult, LeaseBody, TaskSpec
from dcp.kit.clock import Clock, iso
from dcp.kit.errors import error_responses
from dcp.kit.pagination import PageDep
from dcp.models import Job
from dcp.models.job import TERMINAL_STATUSES

router = APIRouter(prefix="/providers", tags=["provider jobs"])
_LEASED = error_responses(400, 401, 403, 404, 409)
_RECHECK_SECONDS = 5.0


@router.get(
    "/jobs/next",
    response_model=TaskSpec,
    responses={**error_responses(400, 401, 403), 204: {"description": "No job within the wait"}},
    summary="Long-poll for the next job (the fallback for providers without the WebSocket link)",
)
async def next_job(
    provider: CurrentProvider,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    wait: Annotated[int, Query(ge=0, le=60, description="Seconds to wait for a job")] = 25,
) -> TaskSpec | Response:
    clock: Clock = request.app.state.clock
    db: Database = request.app.state.db
    await end_transaction(session)  # nothing is held while this request waits
    deadline = time.monotonic() + min(wait, settings.jobs.long_poll_max_seconds)
    async with hub_of(request).wakeup(provider.id) as woken:
        while True:
            woken.clear()
            # A GET that claims: each attempt is its own writing unit of work (on SQLite it must take the
            # write lock at BEGIN, which the request's read session does not).
            async with db.writer() as claiming:
                now = clock.now()
                job = await dispatch.claim_next(claiming, provider=provider, now=now, settings=settings)
                task = dispatch.signed_task(job, provider) if job else None
                await claiming.commit()
            if task is not None:
                return TaskSpec(**task)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return Response(status_code=204)
            with contextlib.suppress(TimeoutError):  # re-check on a timer too: other replicas place jobs
                await asyncio.wait_for(woken.wait(), timeout=min(remaining, _RECHECK_SECONDS))


@router.post(
    "/jobs/{job_id}/start", responses=_LEASED, summary="The job started running (server time counts)"
)
async def start_job(
    job_id: str,
    body: LeaseBody,
    provider: CurrentProvider,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Ack:
    job = await dispatch.leased_job(session, job_id=job_id, provider=provider, lease_token=body.lease_token)
    await dispatch.start(session, job, now=now, settings=settings)
    background.add_task(hub_of(request).publish_later, job.job_id, {"type": "status", "status": job.status})
    return Ack(status=job.status, lease_expires_at=iso(job.lease_expires_at))


@router.post(
    "/jobs/{job_id}/events", responses=_LEASED, summary="Progress, logs and tokens; renews the lease"
)
async def job_events(
    job_id: str,
    body: JobEvents,
    provider: CurrentProvider,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Ack:
    job = await dispatch.leased_job(session, job_id=job_id, provider=provider, lease_token=body.lease_token)
    await dispatch.renew(session, job, now=now, settings=settings, progress=body.progress)
    if body.endpoint_url and job.job_type == "vllm_serve":  # serving: the server names its URL
        job.result = {"endpoint_url": endpoint.endpoint_url(settings, job.job_id), "model": job.model}
    hub = hub_of(request)
    if body.progress is not None:
        hub.publish(job.job_id, {"type": "progress", "progress": body.progress})
    if body.tokens:
        hub.publish(job.job_id, {"type": "tokens", "text": "".join(body.tokens)})
    for line in body.logs:
        hub.publish(job.job_id, {"type": "log", "line": line})
    return Ack(status=job.status, lease_expires_at=iso(job.lease_expires_at))


@router.post(
    "/jobs/{job_id}/result", responses=_LEASED, summary="Report the job's result (retry until acknowledged)"
)
async def job_result(
    job_id: str,
    body: JobResult,
    provider: CurrentProvider,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> Ack:
    job = await dispatch.leased_job(
        session, job_id=job_id, provider=provider, lease_token=body.lease_token, finished_ok=True
    )
    if job.status in TERMINAL_STATUSES:  # a retry of a delivered result, or the job was cancelled meanwhile
        return Ack(status=job.status)
    if body.status == "completed":
        tokens = body.tokens_generated
        if tokens is not None and job.job_type == "llm_inference":
            tokens = min(tokens, int(job.params.get("max_tokens", tokens)))  # a provider cannot inflate usage
        result = body.result
        if job.job_type == "vllm_serve" and result.get("endpoint_url"):  # the URL the renter used, not theirs
            result = {**result, "endpoint_url": endpoint.endpoint_url(settings, job.job_id)}
        await lifecycle.complete(
            session,
            job,
            now=now,
            settings=settings,
            result=result,
            tokens_generated=tokens,
            execution_time_ms=body.execution_time_ms,
        )
    elif body.cause == "interrupted":
        await lifecycle.lease_lost(session, job, now=now, settings=settings, exclude=False)
    else:
        await lifecycle.fail(
            session,
            job,
            now=now,
            settings=settings,
            bill_run=body.cause == "job",  # as a job stopped at its limit; a provider's failure is refunded
            error=body.error or "The job failed",
        )
    hub = hub_of(request)
    background.add_task(hub.publish_later, job.job_id, {"type": "status", "status": job.status})
    background.add_task(hub.nudge_later, provider.id)  # a slot is free: take the next job
    return Ack(status=job.status)


@router.get(
    "/jobs", responses=error_responses(400, 401, 403), summary="Jobs that ran or run on this provider"
)
async def provider_jobs(
    provider: CurrentProvider, session: SessionDep, page: PageDep, before: JobCursor = None
) -> JobList:
    return await views.job_list(
        session, owner=Job.provider_id == provider.id, filters=[], page=page, before=before
    )
