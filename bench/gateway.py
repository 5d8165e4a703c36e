"""The /v1 gateway: its added latency and first-token overhead over a direct call, and its requests per second
per core against LiteLLM's proxy, all measured in one run against the same fake upstream on loopback.

Every server under test (DCP, LiteLLM, one worker each) is pinned to core 0 and all run at once, idle but
for the one being measured; the load generator, the fake upstream and the pool providers share core 1.
Latency is measured open-loop at a fixed rate, throughput closed-loop, both in short blocks that take turns
between the targets, so that drift on a shared machine hits all of them alike. Requests per core divide the
answered requests by the CPU seconds the server process itself used in its blocks.

What limits the added latency is shown beside it: two byte forwarders in the places of DCP's server and its
provider's daemon (``bench/forwarder.py``: what the topology's two extra hops cost with no work in them), and
DCP's added latency at higher fixed rates, where its processes have less time to fall asleep between requests.
"""

from __future__ import annotations

import os
import sys
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from bench import dcp_server, litellm_proxy, loadgen, profile
from bench.fake_upstream import MODEL
from bench.processes import (
    LOAD_CORE,
    SERVER_CORE,
    cpu_seconds,
    free_port,
    percentile,
    start,
    stop,
    wait_listening,
)
from bench.report import summary

RATE_PER_SECOND = 25
LATENCY_BLOCK_SECONDS = 5.0
LATENCY_ROUNDS = 3
# The same added latency at higher fixed rates (DCP and the forwarders only; LiteLLM's proxy saturates near
# 170 requests/s): block seconds at each rate, two rounds.
SWEEP = {100: 3.0, 400: 2.0}
SWEEP_ROUNDS = 2
THROUGHPUT_WARMUP_SECONDS = 1.0
THROUGHPUT_BLOCK_SECONDS = 5.0
THROUGHPUT_ROUNDS = 2
CONNECTIONS = 32
PATH = "/v1/chat/completions"
CHAT = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "What is the capital of Saudi Arabia?"}],
    "max_tokens": 16,
}
MODES = {"chat": CHAT, "chat_stream": {**CHAT, "stream": True}}


@dataclass(frozen=True)
class Endpoint:
    """Something the load is sent to: the fake upstream itself, or a gateway in front of it."""

    name: str
    port: int
    headers: dict[str, str]
    pids: tuple[int, ...]  # its processes, the one the requests reach first profiled

    def target(self, mode: str) -> loadgen.Target:
        return loadgen.Target(self.name, self.port, PATH, self.headers, MODES[mode])


async def run() -> dict[str, Any]:
    with TemporaryDirectory() as folder:
        async with AsyncExitStack() as stack:
            direct = await _upstream(stack)
            gateways, litellm = await _gateways(stack, Path(folder), upstream_port=direct.port)
            for endpoint in gateways:
                for mode in MODES:
                    await _smoke(endpoint.target(mode))
            floor = await _forwarders(stack, upstream_port=direct.port)
            measured = [endpoint for endpoint in gateways if endpoint.name != "dcp_free_model"]
            latency = {mode: await _latency(mode, direct, [*measured, floor]) for mode in MODES}
            dcp = next(endpoint for endpoint in gateways if endpoint.name == "dcp")
            sweep = {
                rate: {
                    mode: await _latency(
                        mode, direct, [dcp, floor], rate=rate, seconds=seconds, rounds=SWEEP_ROUNDS
                    )
                    for mode in MODES
                }
                for rate, seconds in SWEEP.items()
            }
            throughput = {mode: await _throughput(mode, gateways) for mode in MODES}
    return {
        "summary": summary({RATE_PER_SECOND: latency, **sweep}, throughput, litellm=litellm),
        "latency": latency,
        "latency_at_higher_rates": sweep,
        "throughput": throughput,
        "litellm": litellm,
    }


async def _upstream(stack: AsyncExitStack) -> Endpoint:
    port = free_port()
    process = await start(
        [sys.executable, "-m", "bench.fake_upstream", "--port", str(port)],
        core=LOAD_CORE,
        env=dict(os.environ),
        cwd=str(Path(__file__).parent.parent),
    )
    stack.callback(stop, process)
    await wait_listening(port, process=process)
    return Endpoint("direct", port, {}, (process.pid,))


async def _forwarders(stack: AsyncExitStack, *, upstream_port: int) -> Endpoint:
    """Two byte forwarders where DCP's server (core 0) and its provider's daemon (core 1) stand, in front of
    the same fake upstream: the latency of the topology's two extra hops, with no work done in them."""
    to = upstream_port
    pids: list[int] = []
    for core in (LOAD_CORE, SERVER_CORE):  # the daemon's place first: the server's forwards to it
        port = free_port()
        command = [sys.executable, "-m", "bench.forwarder", "--port", str(port), "--to", str(to)]
        process = await start(command, core=core, env=dict(os.environ), cwd=str(Path(__file__).parent.parent))
        stack.callback(stop, process)
        await wait_listening(port, process=process)
        pids.insert(0, process.pid)
        to = port
    return Endpoint("forwarders", to, {}, tuple(pids))


async def _gateways(
    stack: AsyncExitStack, folder: Path, *, upstream_port: int
) -> tuple[list[Endpoint], dict[str, Any]]:
    """DCP; as diagnostics DCP with a free model and DCP relaying each request to the replica that holds the
    pool's links; and LiteLLM when it can be installed and started."""
    print("starting DCP (core 0) with its pool providers (core 1) ...", flush=True)
    endpoints = []
    for name, free, relayed in (
        ("dcp", False, False),
        ("dcp_free_model", True, False),
        ("dcp_relayed", False, True),
    ):
        server = await stack.enter_async_context(
            dcp_server.running(folder / name, upstream_port=upstream_port, free_model=free, relayed=relayed)
        )
        endpoints.append(Endpoint(name, server.port, server.renter_headers, server.pids))
    print(f"starting LiteLLM {litellm_proxy.VERSION} (core 0) ...", flush=True)
    try:
        proxy = await stack.enter_async_context(
            litellm_proxy.running(folder, model=MODEL, upstream_port=upstream_port)
        )
    except (litellm_proxy.Unavailable, OSError) as exc:
        print(f"LiteLLM is left out of this run: {exc}", flush=True)
        return endpoints, {"unavailable": str(exc)}
    endpoints.append(Endpoint("litellm", proxy.port, proxy.headers, (proxy.pid,)))
    return endpoints, {"version": litellm_proxy.VERSION}


async def _smoke(target: loadgen.Target) -> None:
    samples, failures = await loadgen.open_loop(target, rate=20, seconds=0.5)
    if failures or not samples:
        raise RuntimeError(f"{target.name} did not answer {target.path} (stream={target.stream}) correctly")


async def _latency(
    mode: str,
    direct: Endpoint,
    gateways: list[Endpoint],
    *,
    rate: int = RATE_PER_SECOND,
    seconds: float = LATENCY_BLOCK_SECONDS,
    rounds: int = LATENCY_ROUNDS,
) -> dict[str, Any]:
    """Blocks at the same open-loop rate, taking turns; each gateway's percentiles minus the direct ones."""
    endpoints = [direct, *gateways]
    samples: dict[str, list[loadgen.Sample]] = {endpoint.name: [] for endpoint in endpoints}
    failed = dict.fromkeys(samples, 0)
    for _ in range(rounds):
        for endpoint in endpoints:
            got, failures = await loadgen.open_loop(endpoint.target(mode), rate=rate, seconds=seconds)
            samples[endpoint.name] += got
            failed[endpoint.name] += failures
    measure = "first" if MODES[mode].get("stream") else "total"
    figures: dict[str, Any] = {"rate_per_second": rate, "measure": measure}
    for name, taken in samples.items():
        values = [getattr(sample, measure) for sample in taken]
        figures[name] = {"requests": len(values), "failed": failed[name], **_percentiles(values)}
    for endpoint in gateways:
        for p in ("p50_ms", "p99_ms"):
            figures[endpoint.name][f"added_{p}"] = round(figures[endpoint.name][p] - figures["direct"][p], 3)
        brief = _brief(figures, endpoint.name)
        print(f"  {mode} latency ({measure}) at {rate}/s {endpoint.name}: {brief}", flush=True)
    return figures


def _percentiles(values: list[float]) -> dict[str, float]:
    return {
        name: round(percentile(values, p) * 1000, 3) if values else 0.0
        for name, p in (("p50_ms", 50), ("p90_ms", 90), ("p99_ms", 99), ("max_ms", 100))
    }


def _brief(figures: dict[str, Any], name: str) -> str:
    ours, direct = figures[name], figures["direct"]
    return (
        f"p50 {ours['p50_ms']} ms (direct {direct['p50_ms']}, added {ours['added_p50_ms']}), "
        f"p99 {ours['p99_ms']} ms (direct {direct['p99_ms']}, added {ours['added_p99_ms']}), "
        f"{ours['failed']} failed"
    )


async def _throughput(mode: str, gateways: list[Endpoint]) -> dict[str, Any]:
    """Closed-loop blocks taking turns between the gateways; totals over all of a gateway's blocks."""
    totals = {endpoint.name: {"requests": 0, "failed": 0, "wall": 0.0, "cpu": 0.0} for endpoint in gateways}
    for round_ in range(THROUGHPUT_ROUNDS):
        for endpoint in gateways:
            async with profile.recording(endpoint.pids[0], f"gateway-{mode}-{endpoint.name}-{round_}"):
                block = await loadgen.closed_loop(
                    endpoint.target(mode),
                    connections=CONNECTIONS,
                    warmup=THROUGHPUT_WARMUP_SECONDS,
                    seconds=THROUGHPUT_BLOCK_SECONDS,
                    cpu=lambda pids=endpoint.pids: sum(cpu_seconds(pid) for pid in pids),
                )
            total = totals[endpoint.name]
            total["requests"] += block["requests"]
            total["failed"] += block["failed"]
            total["wall"] += block["wall_seconds"]
            total["cpu"] += block["server_cpu_seconds"]
    figures: dict[str, Any] = {"connections": CONNECTIONS}
    for name, total in totals.items():
        figures[name] = {
            "requests": total["requests"],
            "failed": total["failed"],
            "requests_per_second": round(total["requests"] / total["wall"], 1),
            "server_cpu_share": round(total["cpu"] / total["wall"], 2),
            "requests_per_core_second": round(total["requests"] / total["cpu"], 1) if total["cpu"] else 0.0,
        }
        print(f"  {mode} throughput {name}: {figures[name]}", flush=True)
    return figures
