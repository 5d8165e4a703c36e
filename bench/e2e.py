"""End to end: submit to the first LLM token through a real daemon, minus the model's own first-token time."""

# ``dcp serve`` (SQLite) runs on core 0, a real ``dcp provider run`` daemon (llama.cpp through xllamacpp with
# the Gemma 3 270M GGUF, 2 threads as the daemon's default) on core 1. The renter (this process, core 1)
# submits an llm_inference job and follows its Server-Sent Events until the first ``tokens`` event. In turns
# with each job, the same prompt goes straight to a llama.cpp server in this process (same model, threads and
# prompt format): its time to the first streamed token is the baseline. Overhead = DCP's median - direct's.

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import httpload, plots, stack
from bench.processes import LOAD_CORE, start, stop
from dcp.agent.runtimes import llm

JOBS = 8
WARM_UP = 2
PROMPT = "Write a short story about a falcon over the Empty Quarter."
MAX_TOKENS = 48
TARGET_OVERHEAD_MS = 50.0
JOB = {
    "job_type": "llm_inference",
    "duration_minutes": 1,
    "params": {"model": llm.MODEL_ID, "prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0},
}


async def run() -> dict[str, Any]:
    if not llm.model_available():
        return {"summary": {"skipped": "xllamacpp or the Gemma 3 270M package is not installed"}}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        async with stack.dcp(folder / "server", stack.server_env(folder / "server")) as server:
            _, renter_key = await stack.funded_renter(server.base)
            daemon = await _daemon(server.base, folder)
            try:
                with httpload.on_load_core():
                    direct = llm.LlamaServer(cache_dir=folder / "direct", threads=2, context=4096, slots=1)
                    measured = await _measure(server.base, renter_key, await direct.get())
            finally:
                await asyncio.to_thread(stop, daemon)
    return _result(measured)


async def _daemon(base: str, folder: Path) -> subprocess.Popen[bytes]:
    """A registered provider's daemon, started and waited for until it is online."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        body = {"name": "e2e", "email": "e2e@bench.sa", "gpu_model": "CPU", "os": "linux"}
        key = (await http.post("/api/providers/register", json=body)).json()["api_key"]
        command = [sys.executable, "-m", "dcp.cli", "provider", "run", "--server", base, "--key", key]
        command += ["--home", str(folder / "daemon"), "--status-port", "0"]
        daemon = await start(
            command, core=LOAD_CORE, env=dict(os.environ), cwd=str(folder), log=folder / "daemon.log"
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            me = (await http.get("/api/providers/me", headers={"x-provider-key": key})).json()
            if me["provider"]["is_online"]:
                return daemon
            if daemon.poll() is not None:
                break
            await asyncio.sleep(0.2)
    await asyncio.to_thread(stop, daemon)
    raise RuntimeError(f"the daemon did not come online; see {folder / 'daemon.log'}")


async def _measure(base: str, renter_key: str, direct: Any) -> dict[str, list[float]]:
    """The first job warms the daemon's model up and is not counted; then DCP and direct take turns."""
    taken: dict[str, list[float]] = {"dcp": [], "direct": [], "dcp_running": []}
    async with httpx.AsyncClient(base_url=base, timeout=60, headers={"x-renter-key": renter_key}) as http:
        for _ in range(WARM_UP):
            await _first_token_through_dcp(http)
            await asyncio.to_thread(_first_token_direct, direct)
        for _ in range(JOBS):
            running: list[float] = []
            taken["dcp"].append(await _first_token_through_dcp(http, running))
            taken["dcp_running"] += running
            taken["direct"].append(await asyncio.to_thread(_first_token_direct, direct))
    return taken


async def _first_token_through_dcp(http: httpx.AsyncClient, started: list[float] | None = None) -> float:
    """Milliseconds from sending the submit to the first ``tokens`` event on the job's event stream; the
    time to its ``running`` status goes to ``started``."""
    sent = time.perf_counter()
    answer = await http.post("/api/jobs/submit", json=JOB)
    answer.raise_for_status()
    job_id = answer.json()["job"]["job_id"]
    async with http.stream("GET", f"/api/jobs/{job_id}/events") as events:
        async for line in events.aiter_lines():
            if started is not None and not started and '"status": "running"' in line:
                started.append((time.perf_counter() - sent) * 1000)
            if line == "event: tokens":
                first = time.perf_counter()
                break
            if line == "event: done":
                raise RuntimeError(f"{job_id} ended without a token")
    await _finished(http, job_id)
    return (first - sent) * 1000


async def _finished(http: httpx.AsyncClient, job_id: str) -> None:
    """Wait for the job to end, so the next one starts on an idle daemon."""
    for _ in range(300):
        if (await http.get(f"/api/jobs/{job_id}")).json()["job"]["status"] in (
            "completed",
            "failed",
            "cancelled",
        ):
            return
        await asyncio.sleep(0.05)


def _first_token_direct(server: Any) -> float:
    """Milliseconds to the first streamed token from llama.cpp itself, as the daemon asks for it."""
    request = {
        "prompt": llm.PROMPT.format(prompt=PROMPT),
        "max_tokens": MAX_TOKENS,
        "temperature": 0.0,
        "top_p": 1.0,
        "stop": llm.STOPS,
        "stream": True,
    }
    first: list[float] = []

    def on_chunk(chunk: dict[str, Any]) -> bool:
        if not first and any(choice.get("text") for choice in chunk.get("choices", [])):
            first.append(time.perf_counter())
        return False

    sent = time.perf_counter()
    server.handle_completions(request, on_chunk)
    return (first[0] - sent) * 1000 if first else float("nan")


def _result(measured: dict[str, list[float]]) -> dict[str, Any]:
    dcp, direct = statistics.median(measured["dcp"]), statistics.median(measured["direct"])
    overhead = dcp - direct
    summary = {
        "jobs": len(measured["dcp"]),
        "dcp_first_token_median_ms": round(dcp, 1),
        "direct_first_token_median_ms": round(direct, 1),
        "overhead_median_ms": round(overhead, 1),
        "overhead_min_ms": round(min(measured["dcp"]) - min(measured["direct"]), 1),
        "dcp_submit_to_running_median_ms": round(statistics.median(measured["dcp_running"] or [0.0]), 1),
        "ratio_dcp_to_direct": round(dcp / direct, 2),
        "target_overhead_ms": TARGET_OVERHEAD_MS,
        "meets": {"overhead_ms": overhead < TARGET_OVERHEAD_MS},
    }
    summary["plot"] = plots.save(
        "e2e",
        "Submit to first LLM token (Gemma 3 270M on CPU)",
        bars={"llama.cpp direct": direct, "through DCP": dcp},
        bar_label="median time to first token (ms)",
        latencies_ms={
            "direct": measured["direct"],
            "through DCP": measured["dcp"],
            "DCP: job running": measured["dcp_running"],
        },
        latency_label="time to first token (ms)",
    )
    return {"summary": summary, "samples_ms": measured}
