"""Scale-out: two server replicas on one PostgreSQL vs one, same load; every job completed exactly once."""

# PostgreSQL and the replicas run pinned to core 0, the load on core 1: renters submit jobs to the replicas in
# turn while simulated daemons (one per seeded provider) long-poll for work against the replicas in turn,
# start each job and report its result. After a fixed time the submits stop, the daemons drain the queue,
# and the run checks that every submitted job was claimed once and completed once, and that
# ``dcp admin check-ledger`` passes on the database. Each setup gets a fresh database on the same server.

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import httpload, plots, postgres, redis_server, seed, stack
from bench.processes import cpu_seconds

PROVIDERS = 16
RENTERS = 4
LOAD_SECONDS = 8.0
DRAIN_SECONDS = 60.0
JOB = {"job_type": "llm_inference", "duration_minutes": 1, "params": {"prompt": "hi", "max_tokens": 4}}


@dataclass
class Ledger:
    """What the load saw: jobs submitted, claims and completions per job, when each completion came."""

    submitted: list[str] = field(default_factory=list)
    claims: Counter[str] = field(default_factory=Counter)
    completions: Counter[str] = field(default_factory=Counter)
    completed_at: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    by_provider: Counter[str] = field(default_factory=Counter)


async def run() -> dict[str, Any]:
    if not postgres.available():
        return {"summary": {"skipped": "PostgreSQL is not installed"}}
    setups: dict[str, dict[str, Any]] = {}
    async with AsyncExitStack() as exits:
        database = await exits.enter_async_context(postgres.running())
        # Two replicas also with Redis, when it is installed: job events and nudges then reach the other
        # replica's waiting daemons at once (src/dcp/jobs/event_bus.py).
        shared = await exits.enter_async_context(redis_server.running()) if redis_server.available() else None
        plan: list[tuple[str, int, redis_server.Redis | None]] = [
            ("1_replica", 1, None),
            ("2_replicas", 2, None),
        ]
        plan += [("2_replicas_redis", 2, shared)] if shared else []
        for n, (name, replicas, redis) in enumerate(plan):
            url = database.url.rsplit("/", 1)[0] + f"/scale{n}"
            await _create_database(database.url, f"scale{n}")
            setups[name] = await _setup(url, replicas, postgres_pid=database.pid(), redis=redis)
            print(f"  scale-out {name}: {setups[name]['completed_per_second']} jobs/s completed", flush=True)
    return _result(setups)


async def _create_database(url: str, name: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _setup(
    url: str, replicas: int, *, postgres_pid: int, redis: redis_server.Redis | None
) -> dict[str, Any]:
    await seed.migrate(url)
    fleet = await seed.providers(url, PROVIDERS, secret=stack.SECRET.encode(), now=datetime.now(UTC))
    async with AsyncExitStack() as exits:
        folder = Path(exits.enter_context(tempfile.TemporaryDirectory()))
        servers = []
        for n in range(replicas):  # each starts after the one before it migrated the database
            env = stack.server_env(folder / f"r{n}", database_url=url)
            env |= {"DCP_REDIS_URL": redis.url} if redis else {}
            servers.append(await exits.enter_async_context(stack.dcp(folder / f"r{n}", env)))
        bases = [server.base for server in servers]
        renters = [(await stack.funded_renter(bases[0], name=f"scale{n}"))[1] for n in range(RENTERS)]
        pids = [postgres_pid, *(s.pid for s in servers), *([redis.pid] if redis else [])]
        cpu = lambda: sum(cpu_seconds(pid) for pid in pids)  # noqa: E731
        with httpload.on_load_core():
            seen, rate, cpu_used = await _load(bases, renters, [key for _, key in fleet], cpu)
    return {"replicas": replicas, **_tally(seen, rate, cpu_used), "check_ledger": await _check_ledger(url)}


async def _load(
    bases: list[str], renters: list[str], keys: list[str], cpu: Any
) -> tuple[Ledger, float, float]:
    """Submits for LOAD_SECONDS, then a drain; what was seen, jobs completed per second while submits ran
    and the servers' CPU seconds over that time."""
    seen, submitting, draining = Ledger(), asyncio.Event(), asyncio.Event()
    submitting.set()
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200)) as http:
        daemons = [asyncio.create_task(_daemon(http, bases, key, seen, draining)) for key in keys]
        renting = [
            asyncio.create_task(_renter(http, bases, key, n, seen, submitting))
            for n, key in enumerate(renters)
        ]
        started, cpu_before = time.perf_counter(), cpu()
        await asyncio.sleep(LOAD_SECONDS)
        submitting.clear()
        await asyncio.gather(*renting)
        window = time.perf_counter() - started
        in_window = len(seen.completed_at)
        for _ in range(int(DRAIN_SECONDS / 0.2)):
            if sum(seen.completions.values()) >= len(seen.submitted):
                break
            await asyncio.sleep(0.2)
        draining.set()
        await asyncio.gather(*daemons)
        cpu_used = cpu() - cpu_before  # submits and their completions, the drain included
    return seen, in_window / window, cpu_used


async def _renter(
    http: httpx.AsyncClient, bases: list[str], key: str, n: int, seen: Ledger, submitting: asyncio.Event
) -> None:
    turn = n
    while submitting.is_set():
        turn += 1
        answer = await http.post(
            f"{bases[turn % len(bases)]}/api/jobs/submit", headers={"x-renter-key": key}, json=JOB
        )
        if answer.status_code == 201:
            seen.submitted.append(answer.json()["job"]["job_id"])
        else:
            seen.errors[f"submit {answer.status_code}"] += 1


async def _daemon(
    http: httpx.AsyncClient, bases: list[str], key: str, seen: Ledger, draining: asyncio.Event
) -> None:
    """One provider: long-poll a replica (in turn) for its next job, start it, report it completed."""
    headers, turn = {"x-provider-key": key}, 0
    while not draining.is_set():
        turn += 1
        base = bases[turn % len(bases)]
        with contextlib.suppress(httpx.TransportError):
            answer = await http.get(f"{base}/api/providers/jobs/next", headers=headers, params={"wait": 1})
            if answer.status_code != 200:
                continue
            spec = answer.json()["spec"]
            seen.claims[spec["job_id"]] += 1
            lease = {"lease_token": spec["lease_token"]}
            url = f"{bases[(turn + 1) % len(bases)]}/api/providers/jobs/{spec['job_id']}"
            await http.post(f"{url}/start", headers=headers, json=lease)
            result = {**lease, "status": "completed", "result": {"response": "ok"}, "tokens_generated": 2}
            done = await http.post(f"{url}/result", headers=headers, json=result)
            if done.status_code == 200:
                seen.completions[spec["job_id"]] += 1
                seen.by_provider[key[-8:]] += 1
                seen.completed_at.append(time.perf_counter())
            else:
                seen.errors[f"result {done.status_code}"] += 1


def _tally(seen: Ledger, rate: float, cpu_used: float) -> dict[str, Any]:
    submitted = set(seen.submitted)
    return {
        "submitted": len(submitted),
        "completed": sum(seen.completions.values()),
        "completed_per_second": round(rate, 1),
        "server_cpu_ms_per_job": round(cpu_used / max(len(submitted), 1) * 1000, 2),
        "providers_that_ran_jobs": len(seen.by_provider),
        "busiest_provider_share": round(
            max(seen.by_provider.values(), default=0) / max(len(submitted), 1), 2
        ),
        "lost": len(submitted - set(seen.completions)),
        "claimed_twice": sum(1 for count in seen.claims.values() if count > 1),
        "completed_twice": sum(1 for count in seen.completions.values() if count > 1),
        "errors": dict(seen.errors),
    }


async def _check_ledger(url: str) -> str:
    env = {
        **os.environ,
        "DCP_DATABASE_URL": url,
        "DCP_SECRET_KEY": stack.SECRET,
        "DCP_ADMIN_TOKEN": stack.ADMIN,
    }
    command = [sys.executable, "-m", "dcp.cli", "admin", "check-ledger"]
    checked = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=120
    )
    return "ok" if checked.returncode == 0 else (checked.stdout + checked.stderr)[-500:]


def _result(setups: dict[str, dict[str, Any]]) -> dict[str, Any]:
    one, two = setups["1_replica"], setups["2_replicas"]
    correct = all(
        s["lost"] == 0 and s["claimed_twice"] == 0 and s["completed_twice"] == 0 for s in setups.values()
    )
    summary: dict[str, Any] = {
        "one_replica_completed_per_second": one["completed_per_second"],
        "two_replicas_completed_per_second": two["completed_per_second"],
        "ratio_two_to_one": round(two["completed_per_second"] / max(one["completed_per_second"], 0.1), 2),
        "ratio_cpu_per_job_two_to_one": round(
            two["server_cpu_ms_per_job"] / max(one["server_cpu_ms_per_job"], 0.001), 2
        ),
    }
    if shared := setups.get("2_replicas_redis"):
        summary["two_replicas_redis_completed_per_second"] = shared["completed_per_second"]
        summary["ratio_two_redis_to_one"] = round(
            shared["completed_per_second"] / max(one["completed_per_second"], 0.1), 2
        )
    summary |= {
        "jobs": {name: s["submitted"] for name, s in setups.items()},
        "every_job_completed_exactly_once": correct,
        "check_ledger": {name: s["check_ledger"] for name, s in setups.items()},
        "meets": {
            "no_job_lost_or_run_twice": correct and all(s["check_ledger"] == "ok" for s in setups.values())
        },
    }
    summary["plot"] = plots.save(
        "scale-out",
        "Jobs completed per second: one replica vs two on one PostgreSQL",
        bars={
            "1 replica": one["completed_per_second"],
            "2 replicas": two["completed_per_second"],
            **({"2 replicas + Redis": shared["completed_per_second"]} if shared else {}),
        },
        bar_label="jobs/s (submit, claim, start, result)",
    )
    return {"summary": summary, "setups": setups}
