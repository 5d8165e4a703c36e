"""Heartbeats written together: the beats that arrive while one batch is written share the next transaction.

Each beat still returns only once its rows are committed. A batch is five statements whatever its size: the
providers' previous heartbeat times and standing (one SELECT, rows locked on PostgreSQL), one executemany
UPDATE of the providers, one INSERT of the telemetry samples, one upsert of the uptime credits, and COMMIT.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import JSON, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from dcp.config import Settings
from dcp.db.engine import Database
from dcp.db.group_commit import GroupCommit
from dcp.kit.audit import acting_as
from dcp.kit.clock import iso
from dcp.kit.errors import Unauthorized
from dcp.models import Provider, ProviderHeartbeat
from dcp.providers import uptime
from dcp.providers.liveness import status_named
from dcp.providers.schemas import GpuStatus, Heartbeat, HeartbeatAnswer

_MAX_BATCH = 500
_ENOUGH_TO_WRITE = 32
_providers = cast(Table, Provider.__table__)
_samples = cast(Table, ProviderHeartbeat.__table__)
# What a heartbeat sets on its provider (besides the times); the parameter of column ``c`` is ``b_c``.
_COPIED = (
    "gpus",
    "gpu_count",
    "gpu_name",
    "gpu_vram_mib",
    "gpu_util_pct",
    "temp_c",
    "serving_models",
    "serving_ready",
    "serving_concurrency",
    "serving_context",
)

# What describes the daemon rather than its GPUs' readings: a beat that leaves one out keeps the stored value.
_KEPT_WHEN_ABSENT = ("daemon_version", "python_version", "os_info", "hostname", "cached_models")


def _param(column: str) -> Any:
    type_ = _providers.c[column].type
    if isinstance(type_, JSON):  # an absent value binds as SQL NULL, not as JSON's null
        type_ = JSON(none_as_null=True)
    return bindparam(f"b_{column}", type_=type_)


_UPDATE = (
    update(_providers)
    .where(_providers.c.id == bindparam("b_id"))
    .values(
        {
            **{column: _param(column) for column in _COPIED},
            **{column: func.coalesce(_param(column), _providers.c[column]) for column in _KEPT_WHEN_ABSENT},
            "last_heartbeat_at": _param("last_heartbeat_at"),
            "first_heartbeat_at": func.coalesce(_providers.c.first_heartbeat_at, _param("last_heartbeat_at")),
            "slots": func.coalesce(_param("slots"), _providers.c.slots),  # a beat without slots keeps them
        }
    )
)


_SELECT = (
    select(
        *(
            _providers.c[name]
            for name in ("id", "key_digest", "last_heartbeat_at", "approval_status", "paused")
        )
    )
    .where(_providers.c.key_digest.in_(bindparam("digests", expanding=True)))
    .order_by(_providers.c.id)
    .with_for_update()
)
_INSERT = insert(_samples)


class ProviderGone(Unauthorized):
    def __init__(self) -> None:
        super().__init__("Invalid or revoked API key")


@dataclass(slots=True)
class Beat:
    """One heartbeat on its way: the rows it writes, and what the batch read for its answer."""

    now: datetime
    provider_row: dict[str, Any]
    sample_row: dict[str, Any]
    cached_models: list[str] | None  # None: the beat did not say (the stored list stays)
    key_digest: str = ""  # its provider is found by its key's digest in the batch
    provider_id: int | None = field(default=None, init=False)
    approval_status: str = field(default="", init=False)
    paused: bool = field(default=False, init=False)

    def resolved(self, provider_id: int, approval_status: str, paused: bool) -> None:
        self.provider_id, self.approval_status, self.paused = provider_id, approval_status, paused
        self.provider_row["b_id"] = self.sample_row["provider_id"] = provider_id


class HeartbeatWriter:
    """Under load, beats gather by themselves while the batch before theirs is written. At a steady trickle
    (10,000 providers every 30 s is 333 beats/s) they rarely overlap, and a transaction costs more than
    everything else a beat does: so a small batch waits up to ``heartbeat_batch_wait_seconds`` (or until 32
    have come) for others to share its transaction. A daemon does not notice 50 ms more on an answer it
    needs only before its next beat, 30 s later."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.settings = settings
        self._group = GroupCommit(
            db,
            self._write,
            max_batch=_MAX_BATCH,
            name="heartbeats",
            gather_seconds=settings.heartbeat_batch_wait_seconds,
            gather_until=_ENOUGH_TO_WRITE,
        )

    async def record(self, key_digest: str, beat: Heartbeat, *, now: datetime) -> HeartbeatAnswer:
        """Write the beat of the provider holding this key (over HTTP or on its link): the batch that writes
        it also looks the key up, so a heartbeat costs no query of its own. Raises ProviderGone for an
        unknown, rotated or revoked key."""
        item = prepare(beat, now=now)
        item.key_digest = key_digest
        await self._group.write(item)
        acting_as(f"provider:{item.provider_id}")
        return answer(item, version=beat.gpu_status.daemon_version, settings=self.settings)

    async def _write(self, session: AsyncSession, items: list[Beat]) -> list[Exception | None]:
        connection = await session.connection()  # Core statements: the ORM has nothing to track here
        found = await _providers_of(connection, items)
        previous = {row.id: row.last_heartbeat_at for row in found.values()}
        credits: dict[tuple[int, date], int] = {}
        written: list[Beat] = []
        problems: list[Exception | None] = []
        for item in items:  # in arrival order: a provider's second beat in a batch follows its first
            row = found.get(item.key_digest)
            if row is None:
                problems.append(ProviderGone())
                continue
            item.resolved(row.id, row.approval_status, row.paused)
            seconds = uptime.credited_seconds(
                previous[row.id], item.now, threshold_seconds=self.settings.heartbeat_online_seconds
            )
            if seconds:
                key = (row.id, item.now.date())
                credits[key] = credits.get(key, 0) + seconds
            previous[row.id] = item.now
            written.append(item)
            problems.append(None)
        if written:
            await connection.execute(_UPDATE, [item.provider_row for item in written])
            await connection.execute(_INSERT, [item.sample_row for item in written])
            await uptime.credit(connection, credits)
        return problems


class _Found(NamedTuple):
    id: int
    key_digest: str
    last_heartbeat_at: datetime | None
    approval_status: str
    paused: bool


async def _providers_of(connection: AsyncConnection, items: list[Beat]) -> dict[str, _Found]:
    """The batch's providers (locked, in id order, on PostgreSQL), by key digest."""
    found = await connection.execute(_SELECT, {"digests": list({item.key_digest for item in items})})
    return {row.key_digest: row for row in map(_Found._make, found)}


def prepare(beat: Heartbeat, *, now: datetime) -> Beat:
    """The rows a beat writes, worked out before it queues (outside the shared transaction)."""
    gpus = beat.gpus or ([_gpu_part(beat)] if beat.gpu_status.gpu_name else [])
    first = gpus[0] if gpus else GpuStatus()
    status, serving = beat.gpu_status, beat.serving
    cached_models = None if beat.cached_models is None else list(dict.fromkeys(beat.cached_models))
    provider_row = {
        "b_id": None,  # filled in by the batch
        "b_last_heartbeat_at": now,
        "b_gpus": [gpu.model_dump(exclude_none=True) for gpu in gpus],
        "b_gpu_count": len(gpus),
        "b_gpu_name": first.gpu_name,
        "b_gpu_vram_mib": first.gpu_vram_mib,
        "b_gpu_util_pct": first.gpu_util_pct,
        "b_temp_c": first.temp_c,
        "b_daemon_version": status.daemon_version,
        "b_python_version": status.python_version,
        "b_os_info": status.os_info,
        "b_hostname": beat.provider_hostname,
        "b_cached_models": cached_models,
        "b_slots": beat.slots,
        "b_serving_models": list(dict.fromkeys(serving.models)) if serving else [],
        "b_serving_ready": bool(serving and serving.ready and serving.models),
        "b_serving_concurrency": serving.concurrency if serving else 1,
        "b_serving_context": serving.context_length if serving else 4096,
    }
    sample_row = {
        "provider_id": None,
        "received_at": now,
        "gpu_util_pct": first.gpu_util_pct,
        "temp_c": first.temp_c,
        "gpu_vram_mib": first.gpu_vram_mib,
        "vram_used_mib": first.vram_used_mib,
        "power_w": first.power_w,
    }
    return Beat(now, provider_row, sample_row, cached_models)


def _gpu_part(beat: Heartbeat) -> GpuStatus:
    return GpuStatus.model_validate(beat.gpu_status.model_dump(include=set(GpuStatus.model_fields)))


def answer(item: Beat, *, version: str | None, settings: Settings) -> HeartbeatAnswer:
    running = _version(version)
    daemon = settings.daemon
    return HeartbeatAnswer(
        timestamp=iso(item.now) or "",
        status=status_named(item.approval_status, paused=item.paused, online=True),  # it just beat
        needs_update=running is not None and running < _version_or_zero(daemon.min_version),
        update_available=running is not None and running < _version_or_zero(daemon.latest_version),
        latest_version=daemon.latest_version,
        min_version=daemon.min_version,
        approval_status=item.approval_status,
        approved=item.approval_status == "approved",
        preload_model=_preload(daemon.preload_model, item.cached_models),
    )


def _preload(model: str | None, cached_models: list[str] | None) -> str | None:
    """Ask a daemon to prepare the operators' chosen model, until it reports having it."""
    return model if model and model not in (cached_models or ()) else None


@functools.lru_cache(maxsize=256)  # a fleet runs a handful of versions; three are read per beat
def _version(text: str | None) -> tuple[int, ...] | None:
    """``"1.3.2"`` → ``(1, 3, 2)``; None when the text holds no version."""
    if not text:
        return None
    parts = re.findall(r"\d+", text)
    return tuple(int(part) for part in parts[:4]) if parts else None


def _version_or_zero(text: str) -> tuple[int, ...]:
    return _version(text) or (0,)
