"""Renter-facing job endpoints: submit, get, output, history, cancel, and the live event stream."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, Query, Request, status
from fastapi.responses import JSONResponse, Response, StreamingResponse

from dcp.auth import CurrentPrincipal, CurrentRenter, Principal, RenterKey, current_principal, renter_of
from dcp.billing.settlement import settlement_of
from dcp.config import Settings
from dcp.db.engine import Database
from dcp.db.session import SessionDep, end_transaction
from dcp.deps import NowDep, SettingsDep
from dcp.jobs import lifecycle, repository, views
from dcp.jobs.errors import AlreadyFinished, JobNotFound
from dcp.jobs.events import SERVER_STOPPING, EventHub
from dcp.jobs.schemas import (
    CancelAnswer,
    JobGone,
    JobList,
    JobOne,
    JobOutput,
    JobPendingOutput,
    JobStatus,
    JobSubmit,
    JobType,
)
from dcp.jobs.submits import SubmitWriter
from dcp.kit.errors import AppError, Forbidden, error_responses
from dcp.kit.fast_route import FastRoute, fast
from dcp.kit.fields import NoNul
from dcp.kit.pagination import PageDep
from dcp.models import Job
from dcp.models.job import TERMINAL_STATUSES

JobCursor = Annotated[
    str | None,
    Query(max_length=100, description="Only jobs older than this one: the previous page's `next_before`"),
    NoNul,
]
log = logging.getLogger("dcp.jobs")
router = APIRouter(prefix="/jobs", tags=["jobs"])
# Submit has a router of its own, which the app includes ahead of /api's others (as the heartbeat's):
# FastAPI finds a route by walking every included router, which was a third of a submit's framework time.
submit_router = APIRouter(prefix="/jobs", tags=["jobs"], route_class=FastRoute)
_ONE = error_responses(400, 401, 403, 404)


def hub_of(request: Request) -> EventHub:
    hub: EventHub = request.app.state.hub
    return hub


async def visible_job(session: SessionDep, job_id: str, principal: Principal) -> Job:
    """The job if this caller may see it: its renter, the provider it is on, or an admin; else 404."""
    job = await repository.by_job_id(session, job_id[:40])
    if job is None:
        raise JobNotFound()
    allowed = (
        principal.role == "admin"
        or (principal.role == "renter" and job.renter_id == principal.id)
        or (principal.role == "provider" and job.provider_id == principal.id)
    )
    if not allowed:
        raise JobNotFound()
    return job


@submit_router.post(
    "/submit",
    status_code=status.HTTP_201_CREATED,
    response_model=JobOne,
    responses=error_responses(400, 401, 402, 403, 409, 413),
    summary="Submit a job; its cost is held until it ends (Idempotency-Key makes retries safe)",
)
@fast(renter_of)
async def submit(
    body: JobSubmit,
    renter: RenterKey,
    request: Request,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=100)] = None,
) -> Response:
    # No session of its own: the job is written with the submits that arrive meanwhile (submits.py). The
    # app's state is read directly, and the answer serialised once: each step costs every submit.
    state = request.app.state
    writer: SubmitWriter = state.submits
    submitted = await writer.submit(
        renter_id=renter.id, body=body, idempotency_key=idempotency_key, now=state.clock.now()
    )
    if submitted.created:  # committed: wake the provider's link so the job is pushed at once
        hub_of(request).nudge(submitted.job.provider_id)
    answer = JobOne(job=submitted.view).model_dump_json()
    return Response(answer, status_code=status.HTTP_201_CREATED, media_type="application/json")


@router.get("/history", responses=error_responses(400, 401, 403), summary="The renter's jobs, newest first")
async def history(
    renter: CurrentRenter,
    session: SessionDep,
    page: PageDep,
    status: JobStatus | None = None,
    job_type: JobType | None = None,
    before: JobCursor = None,
) -> JobList:
    filters = []
    if status:
        filters.append(Job.status == status)
    if job_type:
        filters.append(Job.job_type == job_type)
    return await views.job_list(
        session, owner=Job.renter_id == renter.id, filters=filters, page=page, before=before
    )


@router.get("/{job_id}", responses=_ONE, summary="A job's current state")
async def get_job(job_id: str, principal: CurrentPrincipal, session: SessionDep) -> JobOne:
    return JobOne(job=await views.job_view(session, await visible_job(session, job_id, principal)))


@router.get(
    "/{job_id}/output",
    response_model=JobOutput,
    responses={
        **_ONE,
        202: {"model": JobPendingOutput, "description": "Still pending or running"},
        410: {"model": JobGone, "description": "Failed or cancelled: the reason and what was refunded"},
    },
    summary="The job's result: 202 while it runs, 200 when done, 410 if it failed or was cancelled",
)
async def output(job_id: str, principal: CurrentPrincipal, session: SessionDep) -> JobOutput | JSONResponse:
    job = await visible_job(session, job_id, principal)
    settled = await settlement_of(session, job.job_id)
    if job.status == "completed" or (job.status == "running" and job.result):
        return views.output(job, settled)  # a running vllm_serve job answers with its endpoint
    if job.status in TERMINAL_STATUSES:
        gone = JobGone(
            error=job.error or f"Job {job.status}",
            status=job.status,
            job_id=job.job_id,
            billing=views.output(job, settled).billing,
        )
        return JSONResponse(gone.model_dump(), status_code=410)
    pending = JobPendingOutput(
        job_id=job.job_id,
        status=job.status,
        progress=job.progress,
        queue_position=await repository.queue_position(session, job),
        message="Job is queued" if job.status == "pending" else "Job is running",
    )
    return JSONResponse(pending.model_dump(), status_code=202)


@router.post(
    "/{job_id}/cancel",
    responses=error_responses(400, 401, 403, 404, 409),
    summary="Cancel: refunded in full before it runs, billed for the time it ran after",
)
async def cancel(
    job_id: str,
    principal: CurrentPrincipal,
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
) -> CancelAnswer:
    job = await visible_job(session, job_id, principal)
    if principal.role == "provider":
        raise Forbidden("Providers cannot cancel a renter's job; report a failed result instead")
    if not await lifecycle.cancel(session, job, now=now, settings=settings):
        raise AlreadyFinished(job.status)
    hub = hub_of(request)
    background.add_task(hub.publish_later, job.job_id, {"type": "status", "status": "cancelled"})
    background.add_task(hub.nudge_later, job.provider_id)
    return CancelAnswer(job=await views.job_view(session, job))


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={**_ONE, 200: {"content": {"text/event-stream": {}}, "description": "Server-Sent Events"}},
    summary="Follow a job live: status changes, progress, and LLM tokens as they are generated",
)
async def events(
    job_id: str,
    principal: CurrentPrincipal,
    request: Request,
    session: SessionDep,
    heartbeat: Annotated[int, Query(ge=1, le=60, description="Seconds between keep-alive comments")] = 15,
) -> StreamingResponse:
    job = await visible_job(session, job_id, principal)
    await end_transaction(session)
    settings: Settings = request.app.state.settings

    async def still_allowed() -> bool:  # a key rotated or revoked, or a renter suspended, ends the stream
        try:
            await current_principal(request, settings)
        except AppError:
            return False
        return True

    hub, db = hub_of(request), request.app.state.db
    stream = job_event_stream(db, hub, job.job_id, keepalive=heartbeat, still_allowed=still_allowed)
    return StreamingResponse(
        stream,
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


async def _asked(still_allowed: Callable[[], Awaitable[bool]]) -> bool:
    try:
        return await still_allowed()
    except Exception:  # the database away a moment: the stream goes on, and asks again later
        log.warning("could not check a job stream's credential; asking again later", exc_info=True)
        return True


async def job_event_stream(
    db: Database,
    hub: EventHub,
    job_id: str,
    *,
    keepalive: int,
    still_allowed: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    """The job's events as SSE. Whether its follower may still follow (``still_allowed``) is asked again
    every ``keepalive`` seconds: a stream opened with a key that is no longer good ends."""
    async with hub.follow(job_id) as queue:
        # Subscribed first, then read: no event can fall between the snapshot and the stream.
        async with db.reader() as session:
            job = await repository.by_job_id(session, job_id)
            snapshot = (await views.job_view(session, job)).model_dump() if job else {}
        yield _sse("status", snapshot)
        if snapshot.get("status") in TERMINAL_STATUSES:
            yield _sse("done", {"status": snapshot["status"]})
            return
        recheck_at = time.monotonic() + keepalive
        while True:
            if time.monotonic() >= recheck_at:
                if not await _asked(still_allowed):
                    yield _sse("error", {"error": "The key this stream was opened with is no longer valid"})
                    return
                recheck_at = time.monotonic() + keepalive
            try:
                event = await asyncio.wait_for(queue.get(), timeout=keepalive)
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event is SERVER_STOPPING:
                return  # the follower reconnects and reads the job again
            yield _sse(event["type"], event)
            if event["type"] == "status" and event.get("status") in TERMINAL_STATUSES:
                yield _sse("done", {"status": event["status"]})
                return


def _sse(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
