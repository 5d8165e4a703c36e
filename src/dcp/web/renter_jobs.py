"""Renter job pages: the job form for each type, the list, and the job page that follows a job live."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.responses import HTMLResponse, Response, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing.settlement import settlement_of
from dcp.db.session import SessionDep, end_transaction
from dcp.deps import NowDep
from dcp.jobs import lifecycle, repository, views
from dcp.jobs.api import hub_of, job_event_stream
from dcp.jobs.errors import JobNotFound
from dcp.jobs.params import PARAMS
from dcp.jobs.schemas import JobSubmit
from dcp.jobs.submits import SubmitWriter
from dcp.kit.errors import AppError
from dcp.kit.pagination import PageDep as ListPageDep
from dcp.models import Job
from dcp.models.job import TERMINAL_STATUSES
from dcp.providers import market
from dcp.web.context import FormDep, Page, RenterPage
from dcp.web.forms import field_errors, in_latin_digits, whole_number

router = APIRouter(prefix="/renter/jobs", include_in_schema=False)
JOB_TYPES = ("llm_inference", "image_generation", "vllm_serve", "custom_container")
# The form fields of each job type's params, which of them are whole numbers, and which take a fraction.
_PARAM_FIELDS = {
    "llm_inference": ("prompt", "model", "max_tokens", "temperature"),
    "image_generation": ("prompt", "width", "height", "steps"),
    "vllm_serve": ("model",),
    "custom_container": ("script",),
}
_NUMBERS = ("max_tokens", "width", "height", "steps", "duration_minutes", "provider_id")
_DECIMALS = ("temperature",)
_DEFAULTS = {
    "duration_minutes": "5",
    "max_tokens": "256",
    "temperature": "0.7",
    "width": "256",
    "height": "256",
}
_DEFAULTS |= {"steps": "20", "model": ""}


@router.get("", response_class=HTMLResponse)
async def job_list(
    page: RenterPage, session: SessionDep, listing: ListPageDep, status: str | None = None
) -> Response:
    where = [Job.renter_id == page.account_id]
    if status in (*TERMINAL_STATUSES, "pending", "assigned", "running"):
        where.append(Job.status == status)
    found, total = await repository.listing(session, where=where, limit=listing.limit, offset=listing.offset)
    recent = [await views.job_view(session, job) for job in found]
    return page.render("renter/jobs.html", recent=recent, total=total, listing=listing, chosen=status)


@router.get("/new", response_class=HTMLResponse)
async def new_job(
    page: RenterPage, session: SessionDep, now: NowDep, type: str = Query("llm_inference")
) -> Response:
    job_type = type if type in JOB_TYPES else "llm_inference"
    return await _form(page, session, now, job_type=job_type, values=dict(_DEFAULTS), errors={})


@router.post("/new", response_class=HTMLResponse)
async def submit(page: RenterPage, form: FormDep, session: SessionDep, now: NowDep) -> Response:
    job_type = form.get("job_type", "")
    if job_type not in JOB_TYPES:
        job_type = "llm_inference"
    values = {name: form.get(name, "") for name in (*_DEFAULTS, "prompt", "script", "provider_id")}
    try:
        body = _job_submit(job_type, form)
        writer: SubmitWriter = page.request.app.state.submits
        # The submit's batch writes on its own connection: this page's session must not hold the write lock.
        await end_transaction(session)
        submitted = await writer.submit(
            renter_id=page.account_id, body=body, idempotency_key=form.get("idempotency_key") or None, now=now
        )
    except ValidationError as exc:
        errors = field_errors(exc, page.locale)
        return await _form(page, session, now, job_type=job_type, values=values, errors=errors, status=400)
    except AppError as exc:
        return await _form(
            page, session, now, job_type=job_type, values=values, errors={}, status=exc.status, error=exc
        )
    if submitted.created:  # committed: wake the provider's link so the job is pushed at once
        hub_of(page.request).nudge(submitted.job.provider_id)
    return page.redirect(f"/renter/jobs/{submitted.job.job_id}")


def _typed(name: str, value: str) -> int | str | None:
    if name in _NUMBERS:
        return whole_number(value)
    return in_latin_digits(value) if name in _DECIMALS else value


def _job_submit(job_type: str, form: dict[str, str]) -> JobSubmit:
    """The API's submit body from the form; params are checked first so their errors name form fields."""
    params: dict[str, Any] = {}
    for name in _PARAM_FIELDS[job_type]:
        value = form.get(name, "")
        if value:
            params[name] = _typed(name, value)
    PARAMS[job_type].model_validate(params)
    return JobSubmit.model_validate(
        {
            "job_type": job_type,
            "duration_minutes": whole_number(form.get("duration_minutes")),
            "provider_id": whole_number(form.get("provider_id")),
            "params": params,
        }
    )


async def _form(
    page: Page,
    session: AsyncSession,
    now: NowDep,
    *,
    job_type: str,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    error: AppError | None = None,
) -> Response:
    live = await market.listing(
        session,
        settings=page.settings,
        now=now,
        live_only=True,
        min_vram_gb=None,
        gpu_model=None,
        limit=100,
        offset=0,
    )
    return page.render(
        "renter/new_job.html",
        status=status,
        error=error,
        job_type=job_type,
        job_types=JOB_TYPES,
        values=values,
        errors=errors,
        providers=live.providers,
        idempotency_key=secrets.token_urlsafe(16),
    )


@router.get("/{job_id}", response_class=HTMLResponse)
async def job_page(job_id: str, page: RenterPage, session: SessionDep) -> Response:
    job = await _own_job(session, page, job_id)
    settled = await settlement_of(session, job.job_id)
    view = await views.job_view(session, job)
    output = views.output(job, settled) if job.result else None
    return page.render(
        "renter/job.html",
        job=view,
        output=output,
        result=job.result or {},
        settled=settled,
        queue_position_cap=repository.QUEUE_POSITION_CAP,
    )


@router.get("/{job_id}/events")
async def job_events(job_id: str, page: RenterPage, session: SessionDep) -> StreamingResponse:
    """The job's live events for its page (the same stream as the API's, signed in by the cookie)."""
    job = await _own_job(session, page, job_id)
    await end_transaction(session)
    hub, db = hub_of(page.request), page.request.app.state.db
    stream = job_event_stream(db, hub, job.job_id, keepalive=15, still_allowed=page.still_signed_in)
    return page.finish(
        StreamingResponse(
            stream,
            media_type="text/event-stream",
            headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
        )
    )


@router.post("/{job_id}/cancel")
async def cancel(
    job_id: str,
    page: RenterPage,
    _form: FormDep,
    session: SessionDep,
    now: NowDep,
    background: BackgroundTasks,
) -> Response:
    job = await _own_job(session, page, job_id)
    if await lifecycle.cancel(session, job, now=now, settings=page.settings):
        background.add_task(
            hub_of(page.request).publish_later, job.job_id, {"type": "status", "status": "cancelled"}
        )
        background.add_task(hub_of(page.request).nudge_later, job.provider_id)
    return page.redirect(f"/renter/jobs/{job.job_id}")


async def _own_job(session: AsyncSession, page: Page, job_id: str) -> Job:
    """The renter's own job; another renter's job is as absent as one that does not exist."""
    job = await repository.by_job_id(session, job_id[:40])
    if job is None or job.renter_id != page.account_id:
        raise JobNotFound()
    return job
