"""Submits written together: the submits that arrive while one batch is written share the next transaction.

Each submit is checked (params, images) and hashed in its own request, then queued; it returns only once its
job and hold are committed, or with the error that is its alone (402, 409). A batch is a handful of
statements whatever its size: earlier jobs under the batch's Idempotency-Keys (when any), placement (one to
three queries per kind of job, ``placement.choose``), the renters' balances, one INSERT of the jobs, the holds
(``ledger.post_many``: one INSERT of transactions, one UPDATE of the accounts, one INSERT of entries), the
queue positions, and COMMIT. One submit at a time (9 statements each) the server's event loop was the limit:
most of a submit's CPU went to building, compiling and handing statements to the database (bench submit).
"""

from __future__ import annotations

import bisect
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import ledger, settlement
from dcp.billing.errors import InsufficientFunds
from dcp.billing.ledger import Account
from dcp.billing.pricing import class_percent, effective_prices, quote
from dcp.config import Settings
from dcp.db.engine import Database
from dcp.db.group_commit import GroupCommit
from dcp.jobs import placement, views
from dcp.jobs.errors import IdempotencyMismatch, InvalidParams, NoCapacity, ProviderUnavailable
from dcp.jobs.params import validate_params
from dcp.jobs.repository import QUEUE_POSITION_CAP
from dcp.jobs.schemas import JobSubmit, JobView
from dcp.kit.http import validation_message
from dcp.models import Job, Provider
from dcp.providers.liveness import is_online

_MAX_BATCH = 200
_ENOUGH_TO_WRITE = 32
_MIB_PER_GIB = 1024
_jobs = cast(Table, Job.__table__)
# RETURNING in no given order: ordered, SQLAlchemy would insert the rows one statement each on SQLite.
_INSERT = insert(_jobs).returning(_jobs.c.job_id, _jobs.c.id)


@dataclass(frozen=True)
class Submitted:
    job: Job
    view: JobView
    created: bool  # False: an earlier submit with the same Idempotency-Key, which stands


@dataclass(slots=True)
class Submission:
    """One submit on its way: checked before it queues, and what its batch made of it."""

    renter_id: int
    body: JobSubmit
    params: dict[str, Any]
    request_hash: str
    idempotency_key: str | None
    now: datetime
    outcome: Submitted | None = field(default=None, init=False)

    @property
    def ask(self) -> placement.Ask:
        requirements = self.body.gpu_requirements
        return placement.Ask(
            min_vram_mib=(requirements.min_vram_gb or 0) * _MIB_PER_GIB if requirements else 0,
            gpu_model=requirements.gpu_model if requirements else None,
            job_type=self.body.job_type,
            model=self.params.get("model"),
        )


class SubmitWriter:
    """Under load, submits gather by themselves while the batch before theirs is written. A batch costs more
    than the submits in it, so one that finds the writer idle waits up to ``submit_batch_wait_seconds`` (3
    ms) for company, or until 32 have come, or none came for a fifth of that: 1,050-1,360 -> 1,450-1,570
    submits/s on one core (bench submit), for a lone submit 0.6 ms more."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.settings = settings
        self._group = GroupCommit(
            db,
            self._write,
            max_batch=_MAX_BATCH,
            name="submits",
            gather_seconds=settings.jobs.submit_batch_wait_seconds,
            gather_until=_ENOUGH_TO_WRITE,
        )

    async def submit(
        self, *, renter_id: int, body: JobSubmit, idempotency_key: str | None, now: datetime
    ) -> Submitted:
        """Create, quote, hold and place a job; InvalidParams, InsufficientFunds, NoCapacity,
        ProviderUnavailable or IdempotencyMismatch change nothing."""
        item = Submission(
            renter_id, body, _params_of(body, self.settings), _request_hash(body), idempotency_key, now
        )
        await self._group.write(item)
        if item.outcome is None:
            raise RuntimeError("a batch left a submit without an outcome or an error")
        return item.outcome

    async def _write(self, session: AsyncSession, items: list[Submission]) -> list[Exception | None]:
        problems: list[Exception | None] = [None] * len(items)
        fresh, twins = await _sort_by_key(session, items, problems)
        choices = await self._targets(session, [items[n] for n in fresh])
        available = await ledger.balances(
            session, Account.renter_available, sorted({items[n].renter_id for n in fresh})
        )
        made: list[tuple[Submission, dict[str, Any]]] = []
        for n, choice in zip(fresh, choices, strict=True):
            item = items[n]
            if isinstance(choice, Exception):
                problems[n] = choice
                continue
            row = self._row(item, choice)
            if row["cost_halala"] > available[item.renter_id]:
                problems[n] = InsufficientFunds(
                    account=Account.renter_available,
                    needed=row["cost_halala"],
                    available=available[item.renter_id],
                )
                continue
            available[item.renter_id] -= row["cost_halala"]
            made.append((item, row))
        if made:
            try:
                await self._create(session, made)
            except IntegrityError:
                if len(items) > 1 or items[0].idempotency_key is None:
                    raise  # each is written alone next (a new job id), and finds any job made under its key
                # A twin on another server created a job under this Idempotency-Key since we looked.
                raise IdempotencyMismatch() from None
        for n, first in twins.items():
            if items[first].request_hash != items[n].request_hash:
                problems[n] = IdempotencyMismatch()
            else:
                problems[n] = problems[first]
                if (made_first := items[first].outcome) is not None:
                    items[n].outcome = Submitted(made_first.job, made_first.view, created=False)
        return problems

    async def _targets(
        self, session: AsyncSession, items: list[Submission]
    ) -> list[placement.Choice | Exception]:
        """Each job's placement: the provider asked for (checked), or the one ``placement`` chooses."""
        asked = [item.body.provider_id for item in items if item.body.provider_id is not None]
        requested = {}
        if asked:
            found = await session.execute(select(Provider).where(Provider.id.in_(asked)))
            requested = {provider.id: provider for provider in found.scalars()}
        placed = [item for item in items if item.body.provider_id is None]
        asks = [item.ask for item in placed]
        now = max((item.now for item in placed), default=None)
        chosen = iter(await placement.choose(session, asks, now=now, settings=self.settings) if now else [])
        targets: list[placement.Choice | Exception] = []
        for item in items:
            if item.body.provider_id is None:
                choice = next(chosen)
                targets.append(NoCapacity() if choice is None else choice)
            else:
                targets.append(self._check_requested(requested.get(item.body.provider_id), item))
        return targets

    def _check_requested(self, provider: Provider | None, item: Submission) -> placement.Choice | Exception:
        if provider is None:
            return ProviderUnavailable("no provider has this id")
        if provider.approval_status != "approved":
            return ProviderUnavailable(f"it is {provider.approval_status}")
        if provider.paused:
            return ProviderUnavailable("it is paused")
        if not is_online(provider, now=item.now, threshold_seconds=self.settings.heartbeat_online_seconds):
            return ProviderUnavailable("it is offline")
        ask = item.ask
        if (provider.gpu_vram_mib or 0) < ask.min_vram_mib:
            return ProviderUnavailable(
                f"it has {(provider.gpu_vram_mib or 0) // _MIB_PER_GIB} GiB of GPU memory"
            )
        names = f"{provider.gpu_model} {provider.gpu_name or ''}".lower()
        if ask.gpu_model and ask.gpu_model.lower() not in names:
            return ProviderUnavailable(f"its GPU is {provider.gpu_name or provider.gpu_model}")
        return placement.Choice(provider.id, provider.prices)

    def _row(self, item: Submission, choice: placement.Choice) -> dict[str, Any]:
        """The job's row: quoted at its provider's price (the default price in the shared queue)."""
        body, settings, now = item.body, self.settings, item.now
        pricing_class = body.pricing_class or body.container_spec.pricing_class or "standard"
        prices = effective_prices(settings.pricing, choice.prices) if choice.provider_id else {}
        per_minute = prices.get(body.job_type, settings.pricing.per_minute(body.job_type))
        percent = class_percent(settings.pricing, pricing_class)
        max_seconds = body.max_duration_seconds or body.duration_minutes * 60
        billed_minutes = max(body.duration_minutes, -(-max_seconds // 60))
        queue_deadline = now + timedelta(seconds=settings.jobs.queue_timeout_seconds)
        requirements = body.gpu_requirements
        ask = item.ask
        return {
            "job_id": new_job_id(now),
            "renter_id": item.renter_id,
            "provider_id": choice.provider_id,
            "requested_provider_id": body.provider_id,
            "job_type": body.job_type,
            "model": ask.model,
            "status": "pending",
            "params": item.params,
            "container_spec": {
                **body.container_spec.model_dump(exclude_none=True),
                "pricing_class": pricing_class,
            },
            "gpu_requirements": requirements.model_dump(exclude_none=True) if requirements else None,
            "min_vram_mib": ask.min_vram_mib,
            "gpu_model": ask.gpu_model,
            "pricing_class": pricing_class,
            "priority": body.priority,
            "duration_minutes": body.duration_minutes,
            "max_duration_seconds": max_seconds,
            "per_minute_halala": per_minute,
            "class_percent": percent,
            "cost_halala": quote(per_minute=per_minute, minutes=billed_minutes, percent=percent),
            "submitted_at": now,
            "queue_deadline": queue_deadline,
            "timeout_at": queue_deadline + timedelta(seconds=max_seconds),
            "attempts": 0,
            "excluded_providers": [],
            "progress": 0,
            "idempotency_key": item.idempotency_key,
            "request_hash": item.request_hash,
        }

    async def _create(self, session: AsyncSession, made: list[tuple[Submission, dict[str, Any]]]) -> None:
        """Insert the jobs and hold their cost; each item gets its job and its view."""
        inserted = await session.execute(_INSERT, [row for _, row in made])
        ids = {job_id: id_ for job_id, id_ in inserted}
        await ledger.post_many(
            session,
            [
                settlement.hold_posting(
                    renter_id=row["renter_id"],
                    work_ref=row["job_id"],
                    amount=row["cost_halala"],
                    now=item.now,
                )
                for item, row in made
            ],
        )
        jobs = [Job(id=ids[row["job_id"]], **row) for _, row in made]
        positions = await _queue_positions(session, jobs)
        for (item, _), job, position in zip(made, jobs, positions, strict=True):
            item.outcome = Submitted(
                job, views.describe(job, settled=None, queue_position=position), created=True
            )


async def _sort_by_key(
    session: AsyncSession, items: list[Submission], problems: list[Exception | None]
) -> tuple[list[int], dict[int, int]]:
    """Which items create a job (by index), and which repeat the Idempotency-Key of one earlier in the
    batch (index → that one's). An item whose key made a job before is answered with it now (or with an
    IdempotencyMismatch in ``problems``)."""
    earlier = await _earlier_jobs(session, items)
    fresh: list[int] = []
    twins: dict[int, int] = {}
    first_with: dict[tuple[int, str], int] = {}
    for n, item in enumerate(items):
        key = (item.renter_id, item.idempotency_key) if item.idempotency_key else None
        if key is None:
            fresh.append(n)
        elif (before := earlier.get(key)) is not None:
            if before.request_hash != item.request_hash:
                problems[n] = IdempotencyMismatch()
            else:
                item.outcome = Submitted(before, await views.job_view(session, before), created=False)
        elif key in first_with:
            twins[n] = first_with[key]
        else:
            first_with[key] = n
            fresh.append(n)
    return fresh, twins


async def _earlier_jobs(session: AsyncSession, items: list[Submission]) -> dict[tuple[int, str], Job]:
    """The jobs already created under the batch's Idempotency-Keys, by (renter, key)."""
    keys = {item.idempotency_key for item in items if item.idempotency_key}
    if not keys:
        return {}
    found = await session.execute(select(Job).where(Job.idempotency_key.in_(keys)))
    return {(job.renter_id, cast(str, job.idempotency_key)): job for job in found.scalars()}


async def _queue_positions(session: AsyncSession, jobs: list[Job]) -> list[int]:
    """Each new (pending) job's place in its queue: 1 for the next to be claimed, at most
    ``QUEUE_POSITION_CAP``. Ahead of it are the older pending jobs of its queue at its priority or above
    (counted per queue and priority, one query for the providers' queues and one for the shared queue), and
    the batch's jobs of its queue with a higher priority, or the same and a lower id."""
    waiting = await _waiting(session, jobs)
    batch: dict[int | None, list[tuple[int, int]]] = {}  # per queue, (-priority, id): claim order
    for job in jobs:
        batch.setdefault(job.provider_id, []).append((-job.priority, job.id))
    for order in batch.values():
        order.sort()
    positions = []
    for job in jobs:
        older_ahead = sum(
            count for priority, count in waiting.get(job.provider_id, ()) if priority >= job.priority
        )
        in_batch_ahead = bisect.bisect_left(batch[job.provider_id], (-job.priority, job.id))
        positions.append(min(older_ahead + in_batch_ahead + 1, QUEUE_POSITION_CAP))
    return positions


async def _waiting(session: AsyncSession, jobs: list[Job]) -> dict[int | None, list[tuple[int, int]]]:
    """Per queue of ``jobs``, (priority, count) of its pending jobs older than the batch at the batch's
    lowest priority or above. The shared queue's are counted only up to the cap, highest priorities first
    (the prefix any of the batch's jobs can have ahead of it); a provider's own queue is short (placement
    fills it to its slots, renters who name it add theirs) and is counted whole."""
    params = {"before": min(job.id for job in jobs), "priority": min(job.priority for job in jobs)}
    providers = list({job.provider_id for job in jobs if job.provider_id is not None})
    waiting: dict[int | None, list[tuple[int, int]]] = {}
    if providers:
        found = await session.execute(_WAITING_FOR_PROVIDERS, {**params, "providers": providers})
        for queue, priority, count in found:
            waiting.setdefault(queue, []).append((priority, count))
    if any(job.provider_id is None for job in jobs):
        shared = await session.execute(_WAITING_SHARED, {**params, "counted": QUEUE_POSITION_CAP - 1})
        waiting[None] = [(priority, count) for priority, count in shared]
    return waiting


_OLDER_PENDING = (
    Job.status == "pending",
    Job.id < bindparam("before"),
    Job.priority >= bindparam("priority"),
)
_WAITING_FOR_PROVIDERS = (
    select(Job.provider_id, Job.priority, func.count())
    .where(*_OLDER_PENDING, Job.provider_id.in_(bindparam("providers", expanding=True)))
    .group_by(Job.provider_id, Job.priority)
)
_shared_prefix = (
    select(Job.priority)
    .where(*_OLDER_PENDING, Job.provider_id.is_(None))
    .order_by(Job.priority.desc())
    .limit(bindparam("counted"))
    .subquery()
)
_WAITING_SHARED = select(_shared_prefix.c.priority, func.count()).group_by(_shared_prefix.c.priority)


def new_job_id(now: datetime) -> str:
    """Unique in practice: 48 random bits for the jobs of one millisecond. (A clash fails its batch, whose
    submits are then written one by one, each with a new id.)"""
    return f"job-{int(now.timestamp() * 1000):x}-{secrets.token_hex(6)}"


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
