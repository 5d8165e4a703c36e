"""Submit throughput: jobs/s through POST /api/jobs/submit on SQLite and on PostgreSQL vs bare FastAPI."""

# Each submit authenticates a renter key, validates the body, places the job among 50 online providers, holds
# its cost in the ledger and inserts it, in one unit of work. ``dcp serve`` (and PostgreSQL, when installed)
# run pinned to core 0 with the bare app; the load generator is on core 1. Closed-loop blocks take turns
# between the servers; a server's CPU is its process tree's (PostgreSQL's backends counted for it).

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import httpload, plots, postgres, profile, seed, stack
from bench.bare_app import PATH as BARE_PATH
from bench.processes import cpu_seconds

PROVIDERS = 50
RENTERS = 8
CONNECTIONS = 16
BLOCK_SECONDS = 4.0
ROUNDS = 2
TARGET_RATIO = 0.25
JOB = {
    "job_type": "llm_inference",
    "duration_minutes": 1,
    "params": {"model": "gemma3-270m", "prompt": "What is the capital of Saudi Arabia?", "max_tokens": 32},
}


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    requests: list[bytes]
    cpu: Callable[[], float]
    pid: int  # the process profiled
    expect: int = 201


async def run() -> dict[str, Any]:
    async with AsyncExitStack() as stack_:
        folder = Path(stack_.enter_context(tempfile.TemporaryDirectory()))
        bare = await stack_.enter_async_context(stack.bare())
        targets = [
            Target("bare", bare.port, [httpload.post(BARE_PATH, {})], _cpu(bare.pid), bare.pid, expect=200)
        ]
        targets.append(
            await stack_.enter_async_context(_dcp("sqlite", folder / "sqlite", stack.sqlite_url(folder)))
        )
        if postgres.available():
            database = await stack_.enter_async_context(postgres.running())
            targets.append(
                await stack_.enter_async_context(_dcp("postgres", folder / "pg", database.url, database))
            )
        with httpload.on_load_core():
            measured = await _blocks(targets)
    return _result(measured)


def _cpu(*pids: int) -> Callable[[], float]:
    return lambda: sum(cpu_seconds(pid) for pid in pids)


@asynccontextmanager
async def _dcp(
    name: str, folder: Path, url: str, database: postgres.Postgres | None = None
) -> AsyncIterator[Target]:
    """A server on ``url`` with 50 seeded providers and funded renters; the target that submits to it."""
    await asyncio.to_thread(folder.mkdir, parents=True)
    await seed.migrate(url)
    await seed.providers(url, PROVIDERS, secret=stack.SECRET.encode(), now=datetime.now(UTC))
    async with stack.dcp(folder, stack.server_env(folder, database_url=url)) as server:
        renters = [await stack.funded_renter(server.base, name=f"{name}{n}") for n in range(RENTERS)]
        requests = [httpload.post("/api/jobs/submit", JOB, {"x-renter-key": key}) for _, key in renters]
        pids = (server.pid, database.pid()) if database else (server.pid,)
        yield Target(f"dcp_{name}", server.port, requests, _cpu(*pids), server.pid)


async def _blocks(targets: list[Target]) -> dict[str, dict[str, Any]]:
    blocks: dict[str, list[dict[str, Any]]] = {target.name: [] for target in targets}
    for _ in range(ROUNDS):
        for target in targets:
            async with profile.recording(target.pid, f"submit-{target.name}"):
                block = await httpload.closed_loop(
                    target.port,
                    target.requests,
                    connections=CONNECTIONS,
                    seconds=BLOCK_SECONDS,
                    cpu=target.cpu,
                    expect=target.expect,
                )
            await httpload.settle(target.cpu)
            print(
                f"  submit {target.name}: {block['requests_per_second']}/s, {block['failed']} failed",
                flush=True,
            )
            blocks[target.name].append(block)
    return {
        name: {
            "requests": sum(b["requests"] for b in taken),
            "failed": sum(b["failed"] for b in taken),
            "statuses": taken[-1]["statuses"],
            "requests_per_second": round(sum(b["requests_per_second"] for b in taken) / len(taken), 1),
            "requests_per_cpu_second": round(
                sum(b["requests_per_cpu_second"] for b in taken) / len(taken), 1
            ),
        }
        for name, taken in blocks.items()
    }


def _result(measured: dict[str, dict[str, Any]]) -> dict[str, Any]:
    bare = measured["bare"]["requests_per_second"]
    summary: dict[str, Any] = {"bare_fastapi_requests_per_second": bare, "connections": CONNECTIONS}
    meets = {}
    for name in ("dcp_sqlite", "dcp_postgres"):
        if name not in measured:
            summary[name] = "not measured: PostgreSQL is not installed"
            continue
        ratio = measured[name]["requests_per_second"] / bare
        summary[f"{name}_jobs_per_second"] = measured[name]["requests_per_second"]
        summary[f"{name}_jobs_per_cpu_second"] = measured[name]["requests_per_cpu_second"]
        summary[f"ratio_{name}_to_bare"] = round(ratio, 3)
        summary[f"{name}_failed"] = measured[name]["failed"]
        meets[name] = ratio >= TARGET_RATIO
    summary["target_ratio_to_bare"] = TARGET_RATIO
    summary["meets"] = meets
    summary["plot"] = plots.save(
        "submit",
        "Job submit throughput on one server core",
        bars={name.replace("_", " "): figures["requests_per_second"] for name, figures in measured.items()},
        bar_label="requests/s (closed loop, 16 connections)",
    )
    return {"summary": summary, "servers": measured}
