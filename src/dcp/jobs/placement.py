"""Where a job runs: the capable online providers, and the best of them for this job."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing.pricing import effective_prices
from dcp.config import Settings
from dcp.jobs import repository
from dcp.models import Provider
from dcp.providers import uptime
from dcp.providers.liveness import online_clause


@dataclass(frozen=True)
class Candidate:
    provider: Provider
    active: int
    reliability: int

    @property
    def idle(self) -> bool:
        return self.active < self.provider.slots


def reliability_percent(provider: Provider, online_share: float) -> int:
    """Half the share of the last 30 days it was online, half the share of leased jobs it finished
    rather than lost (a provider that has run no job yet counts as finishing them all)."""
    finished, lost = provider.jobs_completed, provider.jobs_lost
    finishing = 1.0 if finished + lost == 0 else finished / (finished + lost)
    return round(50 * online_share + 50 * finishing)


def capable(*, min_vram_mib: int, gpu_model: str | None) -> list[ColumnElement[bool]]:
    where = [func.coalesce(Provider.gpu_vram_mib, 0) >= min_vram_mib]
    if gpu_model:
        pattern = f"%{gpu_model.lower()}%"
        where.append(
            func.lower(Provider.gpu_model).like(pattern)
            | func.lower(func.coalesce(Provider.gpu_name, "")).like(pattern)
        )
    return where


def accepting(*, now: datetime, settings: Settings) -> list[ColumnElement[bool]]:
    """Approved, not paused, and online by the one liveness rule."""
    return [
        Provider.approval_status == "approved",
        Provider.paused.is_(False),
        online_clause(now=now, threshold_seconds=settings.heartbeat_online_seconds),
    ]


async def candidates(
    session: AsyncSession,
    *,
    now: datetime,
    settings: Settings,
    min_vram_mib: int,
    gpu_model: str | None,
    exclude: list[int],
) -> list[Candidate]:
    found = await session.execute(
        select(Provider).where(
            *accepting(now=now, settings=settings), *capable(min_vram_mib=min_vram_mib, gpu_model=gpu_model)
        )
    )
    providers = [p for p in found.scalars() if p.id not in exclude]
    load = await repository.active_counts(session, [p.id for p in providers])
    shares = await uptime.online_shares(
        session, providers, now=now, threshold_seconds=settings.heartbeat_online_seconds
    )
    return [
        Candidate(provider=p, active=load[p.id], reliability=reliability_percent(p, shares[p.id]))
        for p in providers
    ]


def best(
    candidates: list[Candidate], *, job_type: str, model: str | None, settings: Settings
) -> Candidate | None:
    """Idle first; then the model already cached, reliability, price, and the lightest load."""
    if not candidates:
        return None

    def score(candidate: Candidate) -> tuple[bool, bool, int, int, float, int]:
        provider = candidate.provider
        price = effective_prices(settings.pricing, provider.prices)[job_type]
        return (
            candidate.idle,
            model is not None and model in provider.cached_models,
            candidate.reliability,
            -price,
            -candidate.active / max(provider.slots, 1),
            -provider.id,
        )

    return max(candidates, key=score)
