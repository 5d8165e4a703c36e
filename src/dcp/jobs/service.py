"""Renter-side job rules: submit (validate, quote, hold, place), views, output and cancel."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import settlement
from dcp.billing.pricing import class_percent, effective_prices, quote
from dcp.config import Settings
from dcp.jobs import placement, repository
from dcp.jobs.errors import IdempotencyMismatch, InvalidParams, NoCapacity, ProviderUnavailable
from dcp.jobs.params import validate_params
from dcp.jobs.schemas import JobSubmit
from dcp.kit.http import validation_message
from dcp.models import Job, Provider
from dcp.providers import repository as providers
from dcp.providers.liveness import is_online

_MIB_PER_GIB = 1024


def new_job_id(now: datetime) -> str:
    return f"job-{int(now.timestamp() * 1000):x}-{secrets.token_hex(3)}"


def _request_hash(body: JobSubmit) -> str:
    canonical = json.dumps(body.model_dump(exclude={"renter_key"}), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _params_of(body: JobSubmit, settings: Settings) -> dict[str, Any]:
    params = dict(body.params)
    for legacy in ("prompt", "model"):  # the oldest seed sends these at the top level
        value = getattr(body, legacy)
        if value is not None and legacy not in params:
            params[legacy] = value
    validated, error = validate_params(body.job_type, params)
    if error is not None:
        errors = [{**e, "loc": ("params", *e["loc"])} for e in error.errors()]
        raise InvalidParams(validation_message(errors))
    if body.job_type == "custom_container":
        image = validated.get("image_override")
        if image and image not in settings.jobs.approved_images:
            approved = ", ".join(settings.jobs.approved_images)
            raise InvalidParams(
                f"Invalid params.image_override: {image} is not an approved image ({approved})"
            )
        if validated.get("network") and not settings.jobs.allow_container_network:
            raise InvalidParams("Invalid params.network: network access for scripts is not allowed on DCP")
    return validated


async def submit(
    session: AsyncSession,
    *,
    renter_id: int,
    body: JobSubmit,
    idempotency_key: str | None,
    settings: Settings,
    now: datetime,
) -> tuple[Job, bool]:
    """Create, quote, hold and place a job in one unit of work; returns (job, created now)."""
    request_hash = _request_hash(body)
    if idempotency_key and (
        earlier := await repository.by_idempotency_key(session, renter_id, idempotency_key)
    ):
        if earlier.request_hash != request_hash:
            raise IdempotencyMismatch()
        return earlier, False
    params = _params_of(body, settings)
    requirements = body.gpu_requirements
    min_vram_mib = (requirements.min_vram_gb or 0) * _MIB_PER_GIB if requirements else 0
    gpu_model = requirements.gpu_model if requirements else None
    target = await _place(
        session,
        body=body,
        min_vram_mib=min_vram_mib,
        gpu_model=gpu_model,
        settings=settings,
        now=now,
        model=params.get("model"),
    )
    pricing_class = body.pricing_class or body.container_spec.pricing_class or "standard"
    per_minute = (effective_prices(settings.pricing, target.prices) if target else {}).get(
        body.job_type, settings.pricing.per_minute(body.job_type)
    )
    percent = class_percent(settings.pricing, pricing_class)
    max_seconds = body.max_duration_seconds or body.duration_minutes * 60
    billed_minutes = max(body.duration_minutes, -(-max_seconds // 60))
    queue_deadline = now + timedelta(seconds=settings.jobs.queue_timeout_seconds)
    job = Job(
        job_id=new_job_id(now),
        renter_id=renter_id,
        provider_id=target.id if target else None,
        requested_provider_id=body.provider_id,
        job_type=body.job_type,
        model=params.get("model"),
        status="pending",
        params=params,
        container_spec={**body.container_spec.model_dump(exclude_none=True), "pricing_class": pricing_class},
        gpu_requirements=requirements.model_dump(exclude_none=True) if requirements else None,
        min_vram_mib=min_vram_mib,
        gpu_model=gpu_model,
        pricing_class=pricing_class,
        priority=body.priority,
        duration_minutes=body.duration_minutes,
        max_duration_seconds=max_seconds,
        per_minute_halala=per_minute,
        class_percent=percent,
        cost_halala=quote(per_minute=per_minute, minutes=billed_minutes, percent=percent),
        submitted_at=now,
        queue_deadline=queue_deadline,
        timeout_at=queue_deadline + timedelta(seconds=max_seconds),
        attempts=0,
        excluded_providers=[],
        progress=0,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
    )
    session.add(job)
    if idempotency_key is None:  # nothing it could collide with: no savepoint (two statements fewer)
        await session.flush()
    else:
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError:
            # The same Idempotency-Key arrived twice at once; the first one stands.
            earlier = await repository.by_idempotency_key(session, renter_id, idempotency_key)
            if earlier is None or earlier.request_hash != request_hash:
                raise IdempotencyMismatch() from None
            return earlier, False
    await settlement.hold(session, renter_id=renter_id, work_ref=job.job_id, amount=job.cost_halala, now=now)
    return job, True


async def _place(
    session: AsyncSession,
    *,
    body: JobSubmit,
    min_vram_mib: int,
    gpu_model: str | None,
    settings: Settings,
    now: datetime,
    model: str | None,
) -> Provider | None:
    """The provider the job waits for: the one asked for, the best idle one, or None (shared queue)."""
    if body.provider_id is not None:
        return await _check_requested(
            session,
            body.provider_id,
            min_vram_mib=min_vram_mib,
            gpu_model=gpu_model,
            settings=settings,
            now=now,
        )
    chosen = await placement.choose(
        session,
        now=now,
        settings=settings,
        min_vram_mib=min_vram_mib,
        gpu_model=gpu_model,
        job_type=body.job_type,
        model=model,
    )
    if chosen is None:
        raise NoCapacity()
    return chosen.provider


async def _check_requested(
    session: AsyncSession,
    provider_id: int,
    *,
    min_vram_mib: int,
    gpu_model: str | None,
    settings: Settings,
    now: datetime,
) -> Provider:
    provider = await providers.by_id(session, provider_id)
    if provider is None:
        raise ProviderUnavailable("no provider has this id")
    if provider.approval_status != "approved":
        raise ProviderUnavailable(f"it is {provider.approval_status}")
    if provider.paused:
        raise ProviderUnavailable("it is paused")
    if not is_online(provider, now=now, threshold_seconds=settings.heartbeat_online_seconds):
        raise ProviderUnavailable("it is offline")
    if (provider.gpu_vram_mib or 0) < min_vram_mib:
        raise ProviderUnavailable(f"it has {(provider.gpu_vram_mib or 0) // _MIB_PER_GIB} GiB of GPU memory")
    names = f"{provider.gpu_model} {provider.gpu_name or ''}".lower()
    if gpu_model and gpu_model.lower() not in names:
        raise ProviderUnavailable(f"its GPU is {provider.gpu_name or provider.gpu_model}")
    return provider
