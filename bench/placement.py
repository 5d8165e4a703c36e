"""Placement: the time submit takes to choose a provider, and dispatch to claim a job, at 10,000 of each."""

# Providers (with 30 days of uptime each) and queued jobs are written into a fresh SQLite database through
# the models, then the functions the server runs are called in this process, pinned to the server core:
# ``placement.choose`` for one job (what a batch of submits runs) and ``dispatch.claim_next`` (what a
# provider's link runs; rolled back each time, so the queue stays full). Before them, the sweeper's
# refresh of the stored reliability that placement walks runs once and is timed too. The baseline is the
# same calls on a fleet of 100 providers and 100 jobs, measured in the same run.

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from bench import plots, seed, stack
from bench.processes import SERVER_CORE, percentile
from dcp.config import Settings
from dcp.db.engine import Database, open_database
from dcp.jobs import dispatch, placement, sweeper
from dcp.models import Provider, Renter

FLEETS = {"baseline": 100, "large": 10_000}
SAMPLES = 500  # p99 is then the 5th slowest, not one stall of the shared machine
UPTIME_DAYS = 30
TARGET_P99_MS = 5.0
# What submit is asked for, in turn: any GPU, 16 GiB or more, a named model, the biggest cards only.
ASKS = ((0, None), (16 * 1024, None), (0, "4090"), (80 * 1024, None))


async def run() -> dict[str, Any]:
    before = os.sched_getaffinity(0)
    timings: dict[str, dict[str, list[float]]] = {}
    refresh_ms: dict[str, float] = {}
    try:
        os.sched_setaffinity(0, {SERVER_CORE})
        for fleet, size in FLEETS.items():
            with tempfile.TemporaryDirectory() as folder:
                timings[fleet], refresh_ms[fleet] = await _measure(stack.sqlite_url(Path(folder)), size)
            brief = _brief(timings[fleet])
            print(
                f"  placement {fleet} ({size:,}): {brief}, reliability refresh {refresh_ms[fleet]:.0f} ms",
                flush=True,
            )
    finally:
        os.sched_setaffinity(0, before)
    return _result(timings, refresh_ms)


async def _measure(url: str, size: int) -> tuple[dict[str, list[float]], float]:
    now = datetime.now(UTC)
    await seed.migrate(url)
    fleet = await seed.providers(url, size, secret=stack.SECRET.encode(), now=now, uptime_days=UPTIME_DAYS)
    db = open_database(url)
    try:
        renter_id = await _renter(db, now)
        await seed.pending_jobs(url, size, renter_id=renter_id, now=now)
        settings = Settings(database_url=url, secret_key=stack.SECRET, heartbeat_online_seconds=600)
        started = time.perf_counter()
        await sweeper.refresh_reliability(db, settings=settings, now=now)
        refresh_ms = (time.perf_counter() - started) * 1000
        submit = await _timed(lambda n: _place(db, settings, now, n))
        claim = await _timed(lambda n: _claim(db, settings, now, fleet[n % len(fleet)][0]))
    finally:
        await db.dispose()
    return {"submit_placement": submit, "dispatch_claim": claim}, refresh_ms


async def _renter(db: Database, now: datetime) -> int:
    async with db.writer() as session:
        row = {"name": "bench", "email": "placement@bench.sa", "key_digest": "0" * 64, "created_at": now}
        renter_id = (await session.execute(insert(Renter).returning(Renter.id), [row])).scalar_one()
        await session.commit()
    return int(renter_id)


async def _timed(call: Callable[[int], Awaitable[None]]) -> list[float]:
    for n in range(10):  # warm the statement caches
        await call(n)
    taken = []
    for n in range(SAMPLES):
        started = time.perf_counter()
        await call(n)
        taken.append((time.perf_counter() - started) * 1000)
    return taken


async def _place(db: Database, settings: Settings, now: datetime, n: int) -> None:
    min_vram_mib, gpu_model = ASKS[n % len(ASKS)]
    async with db.reader() as session:
        ask = placement.Ask(min_vram_mib, gpu_model, job_type="llm_inference", model="gemma3-270m")
        [chosen] = await placement.choose(session, [ask], now=now, settings=settings)
    if chosen is None:
        raise RuntimeError("no provider was chosen")


async def _claim(db: Database, settings: Settings, now: datetime, provider_id: int) -> None:
    async with db.writer() as session:
        provider = await session.get(Provider, provider_id)
        assert provider is not None  # noqa: S101 (seeded above)
        if await dispatch.claim_next(session, provider=provider, now=now, settings=settings) is None:
            raise RuntimeError("a provider found nothing to claim in a full queue")
        await session.rollback()


def _brief(timings: dict[str, list[float]]) -> str:
    return ", ".join(
        f"{name} p50 {percentile(values, 50):.2f} ms p99 {percentile(values, 99):.2f} ms"
        for name, values in timings.items()
    )


def _result(timings: dict[str, dict[str, list[float]]], refresh_ms: dict[str, float]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for fleet, measured in timings.items():
        for name, values in measured.items():
            figures[f"{fleet}_{name}_p50_ms"] = round(percentile(values, 50), 3)
            figures[f"{fleet}_{name}_p99_ms"] = round(percentile(values, 99), 3)
    p99 = figures["large_submit_placement_p99_ms"]
    summary = {
        "providers": FLEETS["large"],
        "queued_jobs": FLEETS["large"],
        **figures,
        # The sweeper's refresh of every provider's stored reliability, once a minute by default.
        **{f"{fleet}_reliability_refresh_ms": round(ms, 1) for fleet, ms in refresh_ms.items()},
        "ratio_large_to_baseline_submit_p99": round(p99 / figures["baseline_submit_placement_p99_ms"], 1),
        "ratio_large_to_baseline_claim_p99": round(
            figures["large_dispatch_claim_p99_ms"] / figures["baseline_dispatch_claim_p99_ms"], 1
        ),
        "ratio_p99_to_target": round(p99 / TARGET_P99_MS, 2),
        "target_p99_ms": TARGET_P99_MS,
        "meets": {
            "submit_placement_p99": p99 < TARGET_P99_MS,
            "dispatch_claim_p99": figures["large_dispatch_claim_p99_ms"] < TARGET_P99_MS,
        },
    }
    summary["plot"] = plots.save(
        "placement",
        f"Placement time, {FLEETS['large']:,} providers and queued jobs vs {FLEETS['baseline']}",
        latencies_ms={
            f"{name} ({fleet})": values
            for fleet, measured in timings.items()
            for name, values in measured.items()
        },
        latency_label="time per placement (ms)",
    )
    return {"summary": summary, "samples_ms": timings}
