"""Provider rules: registration, pause and resume, key rotation, prices (heartbeats: heartbeats.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing.pricing import JOB_TYPES, effective_prices
from dcp.config import PricingSettings, Settings
from dcp.kit import keys
from dcp.kit.errors import BadRequest
from dcp.kit.signing import signing_key_for
from dcp.models import Provider
from dcp.providers import repository
from dcp.providers.errors import EmailTaken
from dcp.providers.schemas import (
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
