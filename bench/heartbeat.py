"""Heartbeat ingest: beats/s on one core against a bare FastAPI endpoint, and 10,000 providers' CPU cost."""

# 10,000 providers (keys, GPUs, today's uptime) are written into a fresh SQLite database through the models;
# ``dcp serve`` and the bare app run pinned to core 0, the load generator on core 1. Throughput: closed loop,
# each request a different provider's real heartbeat body, in blocks that take turns between the servers.
# Latency and CPU: open loop at 333 beats/s (10,000 providers every 30 s) over 1,000 connections in turn,
# with the server's CPU seconds read from /proc.

from __future__ import annotations

import asyncio
import platform
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import httpload, links, plots, profile, seed, stack
from bench.bare_app import PATH as BARE_PATH
from bench.processes import cpu_seconds, percentile

PROVIDERS = 10_000
CONNECTIONS = 64
FLEET_CONNECTIONS = 1000
BLOCK_SECONDS = 4.0
ROUNDS = 2
FLEET_RATE = PROVIDERS / 30  # every provider beats every 30 s
FLEET_SECONDS = 12.0
LINKS = 1000
IDLE_SECONDS = 10.0
TARGETS = {"rate_ratio_to_bare": 0.5, "fleet_cpu_share_of_core": 0.25}


def beat(n: int) -> dict[str, Any]:
    """What a daemon sends every 30 s (dcp.agent.telemetry.heartbeat_body with one GPU)."""
    gpu = {
        "gpu_name": "NVIDIA GeForce RTX 4090",
        "gpu_vram_mib": 24564,
        "vram_used_mib": 1200 + n % 900,
        "gpu_util_pct": n % 100,
        "temp_c": 40 + n % 30,
        "power_w": 80 + n % 200,
        "driver_version": "550.54.14",
        "cuda_version": "12.4",
    }
    status = {"daemon_version": "1.0.0", "python_version": platform.python_version(), "os_info": "Linux 6.1"}
    return {
        "gpu_status": {**status, **gpu},
        "gpus": [gpu],
        "provider_hostname": f"node-{n}",
        "cached_models": ["gemma3-270m"],
        "free_disk_mib": 120_000,
        "slots": 1,
    }


async def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        url = stack.sqlite_url(folder)
        await seed.migrate(url)
        now = datetime.now(UTC)
        fleet = await seed.providers(url, PROVIDERS, secret=stack.SECRET.encode(), now=now, uptime_days=1)
        bodies = [beat(n) for n in range(PROVIDERS)]
        beats = [
            httpload.post("/api/providers/heartbeat", b, {"x-provider-key": k})
            for b, (_, k) in zip(bodies, fleet, strict=True)
        ]
        env = stack.server_env(folder, database_url=url)
        async with stack.dcp(folder, env) as dcp, stack.bare() as bare:
            targets = {"bare": (bare, [httpload.post(BARE_PATH, {})]), "dcp": (dcp, beats)}
            with httpload.on_load_core():
                throughput = await _throughput(targets)
                fleet_runs = {name: await _fleet(name, *target) for name, target in targets.items()}
                over_links = await _over_links(dcp, [key for _, key in fleet[:LINKS]], bodies)
    return _result(throughput, fleet_runs, over_links)


def _cpu(server: stack.Running) -> Callable[[], float]:
    return lambda: cpu_seconds(server.pid)


async def _throughput(targets: dict[str, tuple[stack.Running, list[bytes]]]) -> dict[str, dict[str, Any]]:
    blocks: dict[str, list[dict[str, Any]]] = {name: [] for name in targets}
    for _ in range(ROUNDS):
        for name, (server, requests) in targets.items():
            async with profile.recording(server.pid, f"heartbeat-closed-{name}"):
                block = await httpload.closed_loop(
                    server.port, requests, connections=CONNECTIONS, seconds=BLOCK_SECONDS, cpu=_cpu(server)
                )
            await httpload.settle(_cpu(server))
            print(f"  heartbeat closed loop {name}: {block['requests_per_second']}/s", flush=True)
            blocks[name].append(block)
    return {
        name: {
            "requests": sum(b["requests"] for b in taken),
            "failed": sum(b["failed"] for b in taken),
            "requests_per_second": round(sum(b["requests_per_second"] for b in taken) / len(taken), 1),
            "requests_per_cpu_second": round(
                sum(b["requests_per_cpu_second"] for b in taken) / len(taken), 1
            ),
        }
        for name, taken in blocks.items()
    }


async def _fleet(name: str, server: stack.Running, requests: list[bytes]) -> dict[str, Any]:
    async with profile.recording(server.pid, f"heartbeat-fleet-{name}"):
        measured = await httpload.open_loop(
            server.port,
            requests,
            rate=FLEET_RATE,
            seconds=FLEET_SECONDS,
            cpu=_cpu(server),
            connections=FLEET_CONNECTIONS,
        )
    await httpload.settle(_cpu(server))
    print(f"  heartbeat at {FLEET_RATE:.0f}/s {name}: CPU {measured['server_cpu_share']:.0%}", flush=True)
    return measured


async def _over_links(dcp: stack.Running, keys: list[str], bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """The server's CPU with LINKS idle links connected, then with the fleet's heartbeats sent over them."""
    async with links.connected(dcp.base, keys) as connected:
        await httpload.settle(_cpu(dcp))
        before = cpu_seconds(dcp.pid)
        async with profile.recording(dcp.pid, "heartbeat-idle-links"):
            await asyncio.sleep(IDLE_SECONDS)
        idle = (cpu_seconds(dcp.pid) - before) / IDLE_SECONDS
        print(f"  {len(keys)} idle links: CPU {idle:.0%}", flush=True)
        async with profile.recording(dcp.pid, "heartbeat-links"):
            beats = await links.beat(connected, bodies, rate=FLEET_RATE, seconds=FLEET_SECONDS, cpu=_cpu(dcp))
        print(
            f"  heartbeat at {FLEET_RATE:.0f}/s over links: CPU {beats['server_cpu_share']:.0%}", flush=True
        )
    return {"links": len(keys), "idle_cpu_share": round(idle, 3), **beats}


def _result(
    throughput: dict[str, dict[str, Any]], fleet_runs: dict[str, dict[str, Any]], over_links: dict[str, Any]
) -> dict[str, Any]:
    latency = {name: [x * 1000 for x in measured["latencies"]] for name, measured in fleet_runs.items()}
    dcp, bare = throughput["dcp"], throughput["bare"]
    ratio = dcp["requests_per_second"] / bare["requests_per_second"]
    fleet_cpu = fleet_runs["dcp"]["server_cpu_share"]
    summary = {
        "providers": PROVIDERS,
        "dcp_heartbeats_per_second": dcp["requests_per_second"],
        "bare_fastapi_requests_per_second": bare["requests_per_second"],
        "ratio_dcp_to_bare": round(ratio, 3),
        "ratio_dcp_to_bare_per_cpu_second": round(
            dcp["requests_per_cpu_second"] / bare["requests_per_cpu_second"], 3
        ),
        "fleet_rate_per_second": round(FLEET_RATE, 1),
        "fleet_connections": FLEET_CONNECTIONS,
        "fleet_cpu_share_of_one_core": fleet_cpu,
        "bare_cpu_share_at_fleet_rate": fleet_runs["bare"]["server_cpu_share"],
        "fleet_p50_ms": round(percentile(latency["dcp"], 50), 2),
        "fleet_p99_ms": round(percentile(latency["dcp"], 99), 2),
        "bare_p99_ms_at_fleet_rate": round(percentile(latency["bare"], 99), 2),
        "failed": dcp["failed"] + fleet_runs["dcp"]["failed"],
        "idle_links": over_links["links"],
        "idle_links_cpu_share": over_links["idle_cpu_share"],
        "fleet_over_links_cpu_share": over_links["server_cpu_share"],
        "fleet_over_links_p99_ms": round(
            percentile([x * 1000 for x in over_links["latencies"]] or [0.0], 99), 2
        ),
        "targets": TARGETS,
        "meets": {
            "rate_ratio_to_bare": ratio >= TARGETS["rate_ratio_to_bare"],
            "fleet_cpu_share_of_core": fleet_cpu < TARGETS["fleet_cpu_share_of_core"],
        },
    }
    summary["plot"] = plots.save(
        "heartbeat",
        f"Heartbeat ingest on one server core ({PROVIDERS:,} providers)",
        bars={"bare FastAPI": bare["requests_per_second"], "DCP heartbeat": dcp["requests_per_second"]},
        bar_label="requests/s (closed loop, 64 connections)",
        latencies_ms={
            **{f"{name} HTTP at {FLEET_RATE:.0f}/s": values for name, values in latency.items()},
            f"DCP over links at {FLEET_RATE:.0f}/s": [x * 1000 for x in over_links["latencies"]],
        },
    )
    fleet = {
        name: {k: v for k, v in measured.items() if k != "latencies"} for name, measured in fleet_runs.items()
    }
    links_run = {k: v for k, v in over_links.items() if k != "latencies"}
    return {"summary": summary, "throughput": throughput, "fleet": fleet, "over_links": links_run}
