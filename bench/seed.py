"""Large fleets written straight into a benchmark's database through the models: providers, uptime, jobs."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.db.engine import open_database
from dcp.db.migrate import upgrade
from dcp.kit import keys
from dcp.kit.signing import signing_key_for
from dcp.models import Job, Provider, ProviderUptime

GPUS = (
    ("RTX 4090", "NVIDIA GeForce RTX 4090", 24564),
    ("RTX 3090", "NVIDIA GeForce RTX 3090", 24576),
    ("A100", "NVIDIA A100-SXM4-80GB", 81920),
    ("RTX 4070", "NVIDIA GeForce RTX 4070", 12282),
)
_BATCH = 2000


async def migrate(url: str) -> None:
    await asyncio.to_thread(upgrade, url)


def _provider_row(n: int, key: str, *, secret: bytes, now: datetime, rng: random.Random) -> dict[str, Any]:
    model, name, vram = GPUS[n % len(GPUS)]
    return {
        "name": f"node {n}",
        "email": f"node{n}@bench.sa",
        "gpu_model": model,
        "os": "linux",
        "key_digest": keys.digest(key, secret=secret),
        "signing_key": signing_key_for(key),
        "approval_status": "approved",
        "paused": False,
        "created_at": now - timedelta(days=40),
        "first_heartbeat_at": now - timedelta(days=35),
        "last_heartbeat_at": now - timedelta(seconds=rng.randint(0, 30)),
        "gpu_name": name,
        "gpu_vram_mib": vram,
        "gpu_count": 1,
        "cached_models": ["gemma3-270m"] if n % 3 == 0 else [],
        "gpus": [{"gpu_name": name, "gpu_vram_mib": vram}],
        "prices": {"llm_inference": 12 + n % 7} if n % 4 == 0 else {},
        "slots": 1 + n % 2,
        "serving_models": [],
        "serving_ready": False,
        "serving_concurrency": 1,
        "serving_context": 4096,
        "jobs_completed": rng.randint(0, 200),
        "jobs_lost": rng.randint(0, 5),
    }


async def providers(
    url: str, count: int, *, secret: bytes, now: datetime, uptime_days: int = 0
) -> list[tuple[int, str]]:
    """``count`` approved, online providers; each one's id and API key. With ``uptime_days``, each also
    has that many days of uptime history (the reliability score reads them)."""
    rng = random.Random(9)  # noqa: S311 (repeatable fake telemetry, not a secret)
    made = [keys.new_key(keys.Role.provider) for _ in range(count)]
    rows = [_provider_row(n, key, secret=secret, now=now, rng=rng) for n, key in enumerate(made)]
    db = open_database(url)
    try:
        async with db.writer() as session:
            await _insert(session, Provider, rows)
            ids = list((await session.execute(select(Provider.id).order_by(Provider.id))).scalars())[-count:]
            days = [now.date() - timedelta(days=d) for d in range(uptime_days)]
            uptime = [
                {"provider_id": i, "day": day, "seconds": rng.randint(60_000, 86_400)}
                for i in ids
                for day in days
            ]
            await _insert(session, ProviderUptime, uptime)
            await session.commit()
    finally:
        await db.dispose()
    return list(zip(ids, made, strict=True))


async def pending_jobs(url: str, count: int, *, renter_id: int, now: datetime) -> None:
    """``count`` jobs waiting in the shared queue (no hold: the placement benchmark moves no money)."""
    rows = [
        {
            "job_id": f"job-seed-{n:06d}",
            "renter_id": renter_id,
            "job_type": "llm_inference",
            "model": "gemma3-270m",
            "status": "pending",
            "params": {"prompt": "hi", "model": "gemma3-270m"},
            "container_spec": {"pricing_class": "standard"},
            "min_vram_mib": (n % 4) * 8192,
            "pricing_class": "standard",
            "priority": n % 3,
            "duration_minutes": 1,
            "max_duration_seconds": 60,
            "per_minute_halala": 15,
            "class_percent": 100,
            "cost_halala": 15,
            "submitted_at": now - timedelta(seconds=count - n),
            "queue_deadline": now + timedelta(hours=1),
            "timeout_at": now + timedelta(hours=2),
            "attempts": 0,
            "excluded_providers": [],
            "progress": 0,
            "request_hash": "0" * 64,
        }
        for n in range(count)
    ]
    db = open_database(url)
    try:
        async with db.writer() as session:
            await _insert(session, Job, rows)
            await session.commit()
    finally:
        await db.dispose()


async def _insert(session: AsyncSession, model: type[Any], rows: list[dict[str, Any]]) -> None:
    for first in range(0, len(rows), _BATCH):
        await session.execute(insert(model), rows[first : first + _BATCH])
