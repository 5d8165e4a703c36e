"""Provider rules: registration, heartbeats, pause and resume, key rotation."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing.pricing import JOB_TYPES, effective_prices
from dcp.config import PricingSettings, Settings
from dcp.kit import keys
from dcp.kit.clock import iso
from dcp.kit.errors import BadRequest
from dcp.kit.signing import signing_key_for
from dcp.models import Provider, ProviderHeartbeat
from dcp.providers import repository, uptime
from dcp.providers.errors import EmailTaken
from dcp.providers.liveness import status_of
from dcp.providers.schemas import (
    GpuStatus,
    Heartbeat,
    HeartbeatAnswer,
    PriceBounds,
    PriceUpdate,
    ProviderPrices,
    ProviderRegister,
)


async def register(
    session: AsyncSession, *, data: ProviderRegister, settings: Settings, now: datetime
) -> tuple[Provider, str]:
    """Create a provider; returns it with its API key, which exists in clear only in this answer."""
    if await repository.by_email(session, data.email):
        raise EmailTaken()
    key = keys.new_key(keys.Role.provider)
    provider = Provider(
        name=data.name,
        email=data.email,
        phone=data.phone,
        gpu_model=data.gpu_model,
        os=data.os,
        key_digest=keys.digest(key, secret=settings.secret_bytes),
        signing_key=signing_key_for(key),
        slots=1,
        serving_models=[],
        serving_ready=False,
        serving_concurrency=1,
        serving_context=4096,
        jobs_completed=0,
        jobs_lost=0,
        approval_status="approved" if settings.provider_auto_approve else "pending",
        paused=False,
        created_at=now,
        gpu_count=0,
        cached_models=[],
        gpus=[],
        prices={},
    )
    session.add(provider)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:  # the same email registered concurrently
        raise EmailTaken() from exc
    return provider, key


def installer_url(settings: Settings, os_name: str) -> str:
    # The key is not part of the URL: the install command sends it in a header, so it never lands in
    # shell history, proxy logs or browser history.
    return f"{settings.public_url}/api/providers/download/setup?os={os_name}"


async def record_heartbeat(
    session: AsyncSession, *, provider: Provider, beat: Heartbeat, settings: Settings, now: datetime
) -> HeartbeatAnswer:
    gpus = beat.gpus or ([_gpu_part(beat)] if beat.gpu_status.gpu_name else [])
    first = gpus[0] if gpus else GpuStatus()
    status = beat.gpu_status
    await uptime.credit(session, provider, now=now, threshold_seconds=settings.heartbeat_online_seconds)
    provider.last_heartbeat_at = now
    provider.first_heartbeat_at = provider.first_heartbeat_at or now
    provider.gpus = [gpu.model_dump(exclude_none=True) for gpu in gpus]
    provider.gpu_count = len(gpus)
    provider.gpu_name = first.gpu_name
    provider.gpu_vram_mib = first.gpu_vram_mib
    provider.gpu_util_pct = first.gpu_util_pct
    provider.temp_c = first.temp_c
    provider.daemon_version = status.daemon_version
    provider.python_version = status.python_version
    provider.os_info = status.os_info
    provider.hostname = beat.provider_hostname
    provider.cached_models = list(dict.fromkeys(beat.cached_models))
    if beat.slots is not None:
        provider.slots = beat.slots
    serving = beat.serving
    provider.serving_models = list(dict.fromkeys(serving.models)) if serving else []
    provider.serving_ready = bool(serving and serving.ready and serving.models)
    provider.serving_concurrency = serving.concurrency if serving else 1
    provider.serving_context = serving.context_length if serving else 4096
    session.add(
        ProviderHeartbeat(
            provider_id=provider.id,
            received_at=now,
            gpu_util_pct=first.gpu_util_pct,
            temp_c=first.temp_c,
            gpu_vram_mib=first.gpu_vram_mib,
            vram_used_mib=first.vram_used_mib,
            power_w=first.power_w,
        )
    )
    await session.flush()
    return _answer(provider, settings=settings, now=now)


def _gpu_part(beat: Heartbeat) -> GpuStatus:
    return GpuStatus.model_validate(beat.gpu_status.model_dump(include=set(GpuStatus.model_fields)))


def _answer(provider: Provider, *, settings: Settings, now: datetime) -> HeartbeatAnswer:
    running = _version(provider.daemon_version)
    return HeartbeatAnswer(
        timestamp=iso(now) or "",
        status=status_of(provider, now=now, threshold_seconds=settings.heartbeat_online_seconds),
        needs_update=running is not None and running < _version_or_zero(settings.daemon.min_version),
        update_available=running is not None and running < _version_or_zero(settings.daemon.latest_version),
        latest_version=settings.daemon.latest_version,
        min_version=settings.daemon.min_version,
        approval_status=provider.approval_status,
        approved=provider.approval_status == "approved",
        preload_model=_preload(provider, settings.daemon.preload_model),
    )


def _preload(provider: Provider, model: str | None) -> str | None:
    """Ask a daemon to prepare the operators' chosen model, until it reports having it."""
    return model if model and model not in provider.cached_models else None


def _version(text: str | None) -> tuple[int, ...] | None:
    """``"1.3.2"`` → ``(1, 3, 2)``; None when the text holds no version."""
    if not text:
        return None
    parts = re.findall(r"\d+", text)
    return tuple(int(part) for part in parts[:4]) if parts else None


def _version_or_zero(text: str) -> tuple[int, ...]:
    return _version(text) or (0,)


def set_paused(provider: Provider, *, paused: bool) -> None:
    provider.paused = paused


async def rotate_key(session: AsyncSession, *, provider: Provider, settings: Settings) -> str:
    key = keys.new_key(keys.Role.provider)
    provider.key_digest = keys.digest(key, secret=settings.secret_bytes)
    provider.signing_key = signing_key_for(key)
    await session.flush()
    return key


def set_prices(provider: Provider, *, update: PriceUpdate, pricing: PricingSettings) -> None:
    """Apply the fields the provider sent; refuses (400) a price outside the operator's bounds."""
    prices = dict(provider.prices)
    for job_type in update.model_fields_set:
        value = getattr(update, job_type)
        if value is None:
            prices.pop(job_type, None)
            continue
        low, high = pricing.provider_bounds(job_type)
        if not low <= value <= high:
            raise BadRequest(f"Invalid {job_type}: must be between {low} and {high} halala per minute")
        prices[job_type] = value
    provider.prices = prices


def price_sheet(provider: Provider, pricing: PricingSettings) -> ProviderPrices:
    return ProviderPrices(
        price_per_minute_halala=effective_prices(pricing, provider.prices),
        custom=provider.prices,
        bounds={
            job_type: PriceBounds(min=low, max=high)
            for job_type in JOB_TYPES
            for low, high in [pricing.provider_bounds(job_type)]
        },
    )
