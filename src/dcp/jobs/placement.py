"""Where a job runs: the capable online providers, and the best of them for this job."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement, String, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.config import Settings
from dcp.models import Job, Provider
from dcp.models.job import OPEN_STATUSES
from dcp.providers import uptime
from dcp.providers.liveness import online_clause


class JobRecord(Protocol):
    jobs_completed: int
    jobs_lost: int


@dataclass(frozen=True)
class Candidate:
    """What ranking a provider needs, read as plain columns: loading 10,000 providers as ORM objects took
    ~0.5 s per submit (bench placement); the chosen one is loaded by id afterwards."""

    provider_id: int
    slots: int
    price: int  # per minute for the job's type: the provider's own, else the default
    cached: bool  # the job's model is already on the provider's disk
    active: int  # jobs placed on it: waiting in its own queue, leased or running
    reliability: int

    @property
    def idle(self) -> bool:
        return self.active < self.slots


def reliability_percent(provider: JobRecord, online_share: float) -> int:
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
    job_type: str,
    model: str | None,
) -> list[Candidate]:
    rows = (
        await session.execute(
            select(
                Provider.id,
                Provider.slots,
                Provider.prices[job_type].as_integer(),
                cast(Provider.cached_models, String),
                Provider.jobs_completed,
                Provider.jobs_lost,
                Provider.first_heartbeat_at,
                Provider.last_heartbeat_at,
            ).where(
                *accepting(now=now, settings=settings),
                *capable(min_vram_mib=min_vram_mib, gpu_model=gpu_model),
            )
        )
    ).all()
    rows = [row for row in rows if row.id not in exclude]
    load = await _placed_counts(session, len(rows))
    threshold = settings.heartbeat_online_seconds
    online = await uptime.window_seconds(session, [row.id for row in rows], now=now)
    default_price = settings.pricing.per_minute(job_type)
    return [
        Candidate(
            provider_id=row.id,
            slots=row.slots,
            price=default_price if row[2] is None else row[2],
            cached=_lists(row[3], model),
            active=load.get(row.id, 0),
            reliability=reliability_percent(
                row,
                uptime.share(
                    online.get(row.id, 0),
                    row.first_heartbeat_at,
                    row.last_heartbeat_at,
                    now=now,
                    threshold_seconds=threshold,
                ),
            ),
        )
        for row in rows
    ]


def _lists(models_json: str | None, model: str | None) -> bool:
    """Whether a JSON list of names holds ``model``; a substring test first spares decoding most lists."""
    if not model or not models_json or json.dumps(model)[1:-1] not in models_json:
        return False
    return model in json.loads(models_json)


async def _placed_counts(session: AsyncSession, candidates: int) -> dict[int, int]:
    """Jobs placed on each provider and not ended. Jobs still waiting in a provider's own queue count too:
    counting only leased and running ones sent a whole burst of submits to the one best provider while
    the others idled (bench scale-out). These jobs are few, so all are counted at once rather than through
    an IN list of every candidate."""
    if not candidates:
        return {}
    rows = await session.execute(
        select(Job.provider_id, func.count(Job.id))
        .where(Job.status.in_(OPEN_STATUSES), Job.provider_id.is_not(None))
        .group_by(Job.provider_id)
    )
    return {provider: int(count) for provider, count in rows if provider is not None}


def best(candidates: list[Candidate], *, model: str | None) -> Candidate | None:
    """Idle first; then the model already cached, reliability, price, and the lightest load."""
    if not candidates:
        return None

    def score(candidate: Candidate) -> tuple[bool, bool, int, int, float, int]:
        return (
            candidate.idle,
            model is not None and candidate.cached,
            candidate.reliability,
            -candidate.price,
            -candidate.active / max(candidate.slots, 1),
            -candidate.provider_id,
        )

    return max(candidates, key=score)
