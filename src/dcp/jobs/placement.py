"""Where a job runs: the best capable online provider for it, found by walking an index of reliability."""

from __future__ import annotations

import functools
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import BindParameter, ColumnElement, Select, String, bindparam, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.config import Settings
from dcp.models import Job, Provider
from dcp.models.job import OPEN_STATUSES
from dcp.providers import uptime
from dcp.providers.liveness import link_not_lost, online_since


class JobRecord(Protocol):
    jobs_completed: int
    jobs_lost: int


@dataclass(frozen=True)
class Ask:
    """What one job needs of a provider."""

    min_vram_mib: int
    gpu_model: str | None
    job_type: str
    model: str | None


@dataclass(frozen=True)
class Choice:
    """Where the job goes: to an idle provider (``provider_id``; the job is pushed to it, at its ``prices``),
    or, when every capable one is busy, to the shared queue (``provider_id`` None)."""

    provider_id: int | None = None
    prices: dict[str, int] = field(default_factory=dict)


def reliability_percent(provider: JobRecord, online_share: float) -> int:
    """Half the share of the last 30 days it was online, half the share of leased jobs it finished
    rather than lost (a provider that has run no job yet counts as finishing them all); whole percents."""
    finished, lost = provider.jobs_completed, provider.jobs_lost
    finishing = 100 if finished + lost == 0 else 100 * finished // (finished + lost)
    return (int(100 * online_share) + finishing) // 2


async def reliability_changes(
    session: AsyncSession, *, now: datetime, threshold_seconds: int
) -> list[dict[str, int]]:
    """Each provider whose stored reliability (``Provider.reliability``, the order placement walks) is no
    longer its score, with the score. A read of every provider's 30 days: 0.3 s at 10,000 providers, 2.4 s
    at 100,000 (bench placement), so the sweeper runs it outside any write transaction."""
    online = await uptime.window_seconds(session, None, now=now)
    rows = await session.execute(
        select(
            Provider.id,
            Provider.first_heartbeat_at,
            Provider.last_heartbeat_at,
            Provider.jobs_completed,
            Provider.jobs_lost,
            Provider.reliability,
        )
        .where(Provider.first_heartbeat_at.is_not(None))
        .order_by(
            Provider.id
        )  # written in id order, as heartbeat batches lock rows: no deadlock between them
    )
    changed = []
    for row in rows:
        share = uptime.share(
            online.get(row.id, 0),
            row.first_heartbeat_at,
            row.last_heartbeat_at,
            now=now,
            threshold_seconds=threshold_seconds,
        )
        if (percent := reliability_percent(row, share)) != row.reliability:
            changed.append({"id": row.id, "reliability": percent})
    return changed


def accepting(*, now: datetime, settings: Settings) -> list[ColumnElement[bool]]:
    """Approved, not paused, and online by the one liveness rule (``providers.liveness``), written so that
    no database plans it through the heartbeat index: nearly every row passes it, and walking that index
    with a lookup per provider cost 16 ms at 10,000 (bench placement) where the reliability index stops
    at the first fit."""
    return _accepting(online_since(now, settings.heartbeat_online_seconds))


def _accepting(since: datetime | BindParameter[datetime]) -> list[ColumnElement[bool]]:
    return [
        Provider.approval_status == "approved",
        Provider.paused.is_(False),
        func.coalesce(Provider.last_heartbeat_at, _NEVER) >= since,
        link_not_lost(),
    ]


_NEVER = datetime(1970, 1, 1, tzinfo=UTC)


# Jobs placed on each provider and not ended: jobs waiting in a provider's own queue count too (counting only
# running ones sent a whole burst of submits to one provider while others idled). Built once: building it
# per call showed in the submit profile.
_PLACED_LOAD = (
    select(Job.provider_id.label("provider_id"), func.count().label("active"))
    .where(Job.status.in_(OPEN_STATUSES), Job.provider_id.is_not(None))
    .group_by(Job.provider_id)
    .subquery()
)


@dataclass(frozen=True)
class _Idle:
    """An idle capable provider, with what ranks it."""

    id: int
    reliability: int
    price: int
    active: int
    slots: int
    prices: dict[str, int]

    def rank(self, load: int) -> tuple[int, int, int, int]:
        # The order of ``_idle``'s ORDER BY, at the load the batch has given it so far.
        return (-self.reliability, self.price, load * 1000 // self.slots, -self.id)


async def choose(
    session: AsyncSession, asks: list[Ask], *, now: datetime, settings: Settings
) -> list[Choice | None]:
    """Each ask's provider, as if the jobs were placed one after another: the best capable online one, or
    None if there is none. An idle one if any (the job is pushed to it), preferring one with the model
    already on its disk; among those the most reliable, then the cheapest for this job type, the lightest
    load (counting the jobs placed before it in ``asks``), the newest. If all are busy, the job waits in
    the shared queue for the first to free a slot.

    A batch of submits is placed together: each kind of ask costs one to three queries, whatever the
    number of jobs. Each walks the reliability index and stops once it has as many idle fits as there are
    asks: however the asks before it load them, a job's best provider is among those (each better one
    must have taken a job first). Scoring every online provider took 216 ms p50 at 10,000 providers
    (bench placement)."""
    placer = _Placer(session, now=now, settings=settings, limit=len(asks))
    return [await placer.place(ask) for ask in asks]


class _Placer:
    """One batch's placement: the providers it read, per kind of ask, and the jobs it placed so far."""

    def __init__(self, session: AsyncSession, *, now: datetime, settings: Settings, limit: int) -> None:
        self._session, self._settings, self._limit = session, settings, limit
        self._since = online_since(now, settings.heartbeat_online_seconds)
        self._taken: Counter[int] = Counter()  # jobs placed in this batch, per provider
        self._idle: dict[tuple[Ask, bool], list[_Idle]] = {}
        self._anyone: dict[Ask, bool] = {}

    async def place(self, ask: Ask) -> Choice | None:
        # An idle one with the model on its disk first, then any idle one.
        best = self._best(await self._idle_for(ask, cached=True)) if ask.model else None
        best = best or self._best(await self._idle_for(ask, cached=False))
        if best is not None:
            self._taken[best.id] += 1
            return Choice(best.id, best.prices)
        if ask not in self._anyone:
            found = await self._session.execute(_anyone(bool(ask.gpu_model)), self._params(ask))
            self._anyone[ask] = found.first() is not None
        return Choice() if self._anyone[ask] else None

    def _best(self, candidates: list[_Idle]) -> _Idle | None:
        load = {c.id: c.active + self._taken[c.id] for c in candidates}
        spare = [c for c in candidates if load[c.id] < c.slots]
        return min(spare, key=lambda c: c.rank(load[c.id]), default=None)

    async def _idle_for(self, ask: Ask, *, cached: bool) -> list[_Idle]:
        """The ``limit`` best idle providers fitting ``ask`` (with its model cached), best first."""
        if (ask, cached) not in self._idle:
            query = _idle(ask.job_type, by_gpu_model=bool(ask.gpu_model), cached=cached)
            params = {
                **self._params(ask),
                "limit": self._limit,
                "default_price": self._settings.pricing.per_minute(ask.job_type),
                "model_pattern": f"%{_escaped(json.dumps(ask.model))}%",
            }
            self._idle[ask, cached] = [_Idle(*row) for row in await self._session.execute(query, params)]
        return self._idle[ask, cached]

    def _params(self, ask: Ask) -> dict[str, Any]:
        gpu_pattern = f"%{ask.gpu_model.lower()}%" if ask.gpu_model else ""
        return {"online_since": self._since, "min_vram": ask.min_vram_mib, "gpu_pattern": gpu_pattern}


# The queries are built once per shape, their values bound: building one per batch cost more than running it.
def _fits(*, by_gpu_model: bool) -> list[ColumnElement[bool]]:
    """Accepting jobs, with at least ``min_vram`` MiB of GPU memory and (``by_gpu_model``) a GPU whose model
    or name holds ``gpu_pattern``."""
    where = [
        *_accepting(bindparam("online_since", type_=Provider.last_heartbeat_at.type)),
        func.coalesce(Provider.gpu_vram_mib, 0) >= bindparam("min_vram"),
    ]
    if by_gpu_model:
        pattern: BindParameter[str] = bindparam("gpu_pattern")
        where.append(
            func.lower(Provider.gpu_model).like(pattern)
            | func.lower(func.coalesce(Provider.gpu_name, "")).like(pattern)
        )
    return where


@functools.cache
def _anyone(by_gpu_model: bool) -> Select[int]:
    return select(Provider.id).where(*_fits(by_gpu_model=by_gpu_model)).limit(1)


@functools.cache
def _idle(
    job_type: str, *, by_gpu_model: bool, cached: bool
) -> Select[int, int, int, int, int, dict[str, int]]:
    where = _fits(by_gpu_model=by_gpu_model)
    if cached:  # the model's name, as JSON, within the list the daemon reported
        where.append(cast(Provider.cached_models, String).like(bindparam("model_pattern"), escape="/"))
    load = _PLACED_LOAD
    active = func.coalesce(load.c.active, 0)
    price = func.coalesce(Provider.prices[job_type].as_integer(), bindparam("default_price"))
    return (
        select(Provider.id, Provider.reliability, price, active, Provider.slots, Provider.prices)
        .outerjoin(load, load.c.provider_id == Provider.id)
        .where(*where, active < Provider.slots)
        .order_by(Provider.reliability.desc(), price, active * 1000 / Provider.slots, Provider.id.desc())
        .limit(bindparam("limit"))
    )


def _escaped(text: str) -> str:
    """``text`` matched literally by LIKE ... ESCAPE '/'."""
    return text.replace("/", "//").replace("%", "/%").replace("_", "/_")
