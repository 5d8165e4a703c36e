"""Soak: mixed traffic from many renters and simulated daemons, with random daemon deaths, for a bounded time.

The server runs in its own process on loopback (SQLite in a temporary folder unless ``--database-url`` names
another). Simulated daemons hold real WebSocket links (protocol ``dcp-link/1``): they take pushed jobs, report
start, tokens and results over HTTP, answer relayed /v1 requests, and now and then die abruptly (the socket is
aborted, their jobs are abandoned mid-run) and come back a moment later. Renters submit, follow, cancel,
read balances and call /v1. At the end the daemons drain the queue, the server stops, and the ledger's
invariants are checked on its database; the server's memory (RSS) after warm-up is compared with the end.

``python -m bench.soak --minutes 3`` (``python -m bench soak``: 10 minutes) writes bench/results/soak.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import websockets
from sqlalchemy import func, select

from dcp.billing import ledger
from dcp.billing.invariants import all_problems
from dcp.billing.ledger import Account
from dcp.db.engine import open_database
from dcp.models import Job
from dcp.models.job import OPEN_STATUSES

ADMIN = "dc1-admin-" + "s" * 40
PROTOCOL = "dcp-link/1"
MODEL = "soak-model"
CREDIT = 5_000_000  # per renter, in halala: nobody runs dry, so every refusal is a real error
RESULTS = Path(__file__).parent / "results"
_UNLIMITED = "1000000"
_JOB_ID = re.compile(r"job-[0-9a-f]+-[0-9a-f]+")
_EXCEPTION_LINE = re.compile(r"^[\w.]+(Error|Exception)\w*: ")


@dataclass
class Tally:
    """Every request the load made and what came back."""

    by_status: Counter[int] = field(default_factory=Counter)
    by_route: dict[str, Counter[int]] = field(default_factory=dict)
    transport_errors: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)

    async def call(
        self, http: httpx.AsyncClient, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        try:
            answer = await http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            self.transport_errors[type(exc).__name__] += 1
            return None
        self.by_status[answer.status_code] += 1
        route = f"{method} {_JOB_ID.sub('{job_id}', url)}"
        self.by_route.setdefault(route, Counter())[answer.status_code] += 1
        if answer.status_code >= 500 and _no_provider_now(answer):
            self.events["v1_no_provider_now"] += 1
        return answer


def _no_provider_now(answer: httpx.Response) -> bool:
    """The gateway's documented answer when every serving daemon is dead at that moment (not a fault)."""
    try:
        code = answer.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return False
    return code in ("no_capacity_available", "provider_unavailable")


@dataclass
class Daemon:
    """A simulated provider daemon: one link at a time; until ``deaths_until`` it dies at random moments
    (socket aborted, running jobs abandoned) and comes back; it stops for good when ``stop`` is set."""

    base: str
    key: str
    tally: Tally
    rng: random.Random
    http: httpx.AsyncClient
    stop: asyncio.Event
    jobs: dict[str, asyncio.Task[None]] = field(default_factory=dict)

    async def run(self, *, mean_life: float, deaths_until: float) -> None:
        while not self.stop.is_set():
            dies_at = time.monotonic() + self.rng.expovariate(1 / mean_life)
            dies = dies_at < deaths_until
            await self._live(dies_at if dies else None)
            if dies:
                self.tally.events["daemon_deaths"] += 1
                await asyncio.sleep(self.rng.uniform(0.5, 2.0))  # the daemon restarting

    async def _live(self, dies_at: float | None) -> None:
        url = self.base.replace("http://", "ws://") + "/api/providers/link"
        headers = {"x-provider-key": self.key, "x-dcp-protocol": PROTOCOL}
        try:
            async with websockets.connect(url, additional_headers=headers, open_timeout=30) as ws:
                beat_at = 0.0
                while not self.stop.is_set() and (dies_at is None or time.monotonic() < dies_at):
                    if time.monotonic() >= beat_at:
                        await ws.send(json.dumps({"type": "heartbeat", "body": _heartbeat()}))
                        beat_at = time.monotonic() + 15
                    with contextlib.suppress(TimeoutError):  # cancelling recv() loses nothing
                        await self._on_message(ws, json.loads(await asyncio.wait_for(ws.recv(), 0.5)))
                if dies_at is not None:
                    ws.transport.abort()  # no close frame: what the server sees when a daemon is killed
        except (OSError, websockets.WebSocketException) as exc:
            self.tally.transport_errors[f"link {type(exc).__name__}"] += 1
        abandoned = [task for task in self.jobs.values() if not task.done()]
        for task in abandoned:
            task.cancel()
        self.tally.events["jobs_abandoned_by_dying_daemons"] += len(abandoned)
        self.jobs.clear()

    async def _on_message(self, ws: Any, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "job":
            spec = message["task"]["spec"]
            self.jobs[spec["job_id"]] = asyncio.create_task(self._run_job(spec))
        elif kind == "stop" and (task := self.jobs.pop(str(message.get("job_id")), None)):
            task.cancel()
        elif kind == "http":
            for frame in _chat_frames(str(message["id"])):
                await ws.send(json.dumps(frame))

    async def _run_job(self, spec: dict[str, Any]) -> None:
        headers = {"x-provider-key": self.key}
        lease = {"lease_token": spec["lease_token"]}
        url = f"/api/providers/jobs/{spec['job_id']}"
        if await self.tally.call(self.http, "POST", f"{url}/start", headers=headers, json=lease) is None:
            return
        await asyncio.sleep(self.rng.uniform(0.1, 1.5))  # the job running
        tokens = {**lease, "progress": 50, "tokens": ["soak ", "tokens"]}
        await self.tally.call(self.http, "POST", f"{url}/events", headers=headers, json=tokens)
        if self.rng.random() < 0.1:
            result = {**lease, "status": "failed", "error": "simulated runtime failure"}
        else:
            result = {**lease, "status": "completed", "result": {"response": "ok"}, "tokens_generated": 2}
        await self.tally.call(self.http, "POST", f"{url}/result", headers=headers, json=result)
        self.jobs.pop(spec["job_id"], None)


def _heartbeat() -> dict[str, Any]:
    return {
        "slots": 4,
        "gpu_status": {"gpu_name": "NVIDIA RTX 4090", "gpu_vram_mib": 24564},
        "serving": {"models": [MODEL], "ready": True, "concurrency": 8},
    }


def _chat_frames(request_id: str) -> list[dict[str, Any]]:
    body = {
        "id": f"chatcmpl-{request_id[:12]}",
        "object": "chat.completion",
        "created": 0,
        "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    return [
        {"type": "http_start", "id": request_id, "status": 200, "content_type": "application/json"},
        {"type": "http_chunk", "id": request_id, "data": json.dumps(body)},
        {"type": "http_end", "id": request_id},
    ]


async def _renter(http: httpx.AsyncClient, key: str, tally: Tally, rng: random.Random, until: float) -> None:
    """One renter's mix: submit, look at a job, cancel one, read the balance or history, call /v1."""
    headers = {"x-renter-key": key}
    mine: list[str] = []
    while time.monotonic() < until:
        roll = rng.random()
        if roll < 0.40:
            body = {"job_type": "llm_inference", "duration_minutes": 1, "params": {"prompt": "soak"}}
            answer = await tally.call(
                http,
                "POST",
                "/api/jobs/submit",
                headers={**headers, "Idempotency-Key": uuid.uuid4().hex},
                json=body,
            )
            if answer is not None and answer.status_code == 201:
                mine.append(answer.json()["job"]["job_id"])
        elif roll < 0.55:
            chat = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}
            await tally.call(
                http, "POST", "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, json=chat
            )
        elif roll < 0.70 and mine:
            await tally.call(http, "GET", f"/api/jobs/{rng.choice(mine)}", headers=headers)
        elif roll < 0.78 and mine:
            await tally.call(http, "POST", f"/api/jobs/{rng.choice(mine)}/cancel", headers=headers)
        elif roll < 0.90:
            await tally.call(http, "GET", "/api/renters/balance", headers=headers)
        else:
            await tally.call(http, "GET", "/api/jobs/history", headers=headers, params={"limit": 20})
        await asyncio.sleep(rng.uniform(0.05, 0.3))  # think time


def _seeded(seed: float) -> random.Random:
    return random.Random(seed)  # noqa: S311  (a reproducible simulation, not secrets)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for process {pid}")


async def _sample_rss(pid: int, samples: list[tuple[float, float]], stop: asyncio.Event) -> None:
    began = time.monotonic()
    while not stop.is_set():
        samples.append((round(time.monotonic() - began, 1), _rss_mib(pid)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=5)


def _start_server(
    folder: str, database_url: str, *, port: int, lease_seconds: int
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DCP_DATA_DIR": folder,
        "DCP_DATABASE_URL": database_url,
        "DCP_ADMIN_TOKEN": ADMIN,
        "DCP_SECRET_KEY": "s" * 48,
        "DCP_JOBS__LEASE_SECONDS": str(lease_seconds),
        "DCP_JOBS__SWEEP_INTERVAL_SECONDS": "1",
        "DCP_LIMITS__REQUESTS_PER_MINUTE_PER_KEY": _UNLIMITED,
        "DCP_LIMITS__REQUESTS_PER_MINUTE_PER_IP": _UNLIMITED,
        "DCP_LIMITS__SIGNUPS_PER_HOUR_PER_IP": _UNLIMITED,
        "DCP_GATEWAY__REQUESTS_PER_MINUTE": _UNLIMITED,
    }
    command = [sys.executable, "-m", "dcp.cli", "serve", "--port", str(port)]
    with Path(folder, "server.log").open("wb") as log:
        # Fixed arguments built here, no shell.
        return subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


async def _ready(base: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with {server.returncode}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"{base}/docs/openapi.json")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not answer within 60 s")


def _log_errors(log: Path) -> tuple[int, list[str]]:
    """How many tracebacks the server log holds, and its ERROR lines and exception lines (at most 20)."""
    lines = log.read_text(errors="replace").splitlines()
    tracebacks = sum(1 for line in lines if line.startswith("Traceback"))
    return tracebacks, [line for line in lines if " ERROR " in line or _EXCEPTION_LINE.match(line)][:20]


def _stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


async def _accounts(http: httpx.AsyncClient, *, renters: int, providers: int) -> tuple[list[str], list[str]]:
    """Register the renters (each credited CREDIT) and providers; returns their keys."""
    renter_keys, provider_keys = [], []
    for n in range(renters):
        renter = (
            await http.post("/api/renters/register", json={"name": f"soak {n}", "email": f"soak{n}@x.sa"})
        ).json()
        await http.post(
            f"/api/admin/renters/{renter['renter_id']}/credit",
            headers={"x-admin-token": ADMIN, "Idempotency-Key": f"soak-{n}"},
            json={"amount_halala": CREDIT, "reason": "soak"},
        )
        renter_keys.append(renter["api_key"])
    for n in range(providers):
        body = {"name": f"soak node {n}", "email": f"node{n}@x.sa", "gpu_model": "RTX 4090", "os": "linux"}
        provider_keys.append((await http.post("/api/providers/register", json=body)).json()["api_key"])
    return renter_keys, provider_keys


async def _open_jobs(database_url: str) -> dict[str, int]:
    """Open jobs (pending, assigned, running) by the provider they wait on or run on ("shared": none)."""
    db = open_database(database_url)
    try:
        async with db.reader() as session:
            rows = await session.execute(
                select(Job.provider_id, func.count())
                .where(Job.status.in_(OPEN_STATUSES))
                .group_by(Job.provider_id)
            )
            return {str(provider or "shared"): int(count) for provider, count in rows}
    finally:
        await db.dispose()


async def _drain(database_url: str, *, within: float) -> tuple[dict[str, int], list[int]]:
    """Count the open jobs each second until none is left (abandoned leases expire and the sweeper requeues
    them) or ``within`` runs out; returns where they were at first, and the counts."""
    deadline = time.monotonic() + within
    first = await _open_jobs(database_url)
    counts = [sum(first.values())]
    while counts[-1] and time.monotonic() < deadline:
        await asyncio.sleep(1)
        counts.append(sum((await _open_jobs(database_url)).values()))
    return first, counts


async def _audit(database_url: str, *, put_in: int) -> dict[str, Any]:
    """The ledger's invariants, whether any halala was made or lost, and how the jobs ended."""
    db = open_database(database_url)
    try:
        async with db.reader() as session:
            problems = await all_problems(session)
            held = sum(
                [await ledger.total(session, account) for account in Account if account is not Account.cash]
            )
            statuses = dict(
                (await session.execute(select(Job.status, func.count()).group_by(Job.status))).all()
            )
    finally:
        await db.dispose()
    return {
        "ledger_problems": problems,
        "money_created_or_lost_halala": held - put_in,
        "jobs_by_status": statuses,
    }


@dataclass(frozen=True)
class Plan:
    """The shape of one soak run."""

    minutes: float = 10.0
    renters: int = 20
    providers: int = 10
    mean_life_seconds: float = 30.0  # how long a daemon lives, on average, before it is killed
    lease_seconds: int = 8
    seed: int = 7
    database_url: str | None = None  # default: SQLite in the run's temporary folder


async def _load(base: str, database_url: str, pid: int, plan: Plan) -> dict[str, Any]:
    """Run the renters and daemons for the planned minutes, then let the daemons drain the queue."""
    tally, rng = Tally(), _seeded(plan.seed)
    stop_daemons, stop_sampling = asyncio.Event(), asyncio.Event()
    rss: list[tuple[float, float]] = []
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=httpx.Limits(max_connections=200)) as http:
        renter_keys, provider_keys = await _accounts(http, renters=plan.renters, providers=plan.providers)
        sampler = asyncio.create_task(_sample_rss(pid, rss, stop_sampling))
        began = time.monotonic()
        until = began + plan.minutes * 60
        daemons = [
            Daemon(base, key, tally, _seeded(rng.random()), http, stop_daemons).run(
                mean_life=plan.mean_life_seconds, deaths_until=until
            )
            for key in provider_keys
        ]
        daemon_tasks = [asyncio.create_task(daemon) for daemon in daemons]
        await asyncio.gather(
            *(_renter(http, key, tally, _seeded(rng.random()), until) for key in renter_keys)
        )
        seconds = time.monotonic() - began
        backlog, draining = await _drain(
            database_url, within=plan.lease_seconds * 4 + max(30, plan.minutes * 60)
        )
        stop_daemons.set()
        await asyncio.gather(*daemon_tasks)
        stop_sampling.set()
        await sampler
    requests = sum(tally.by_status.values()) + sum(tally.transport_errors.values())
    five_xx = sum(count for status, count in tally.by_status.items() if status >= 500)
    return {
        "requests": requests,
        "requests_per_second": round(requests / seconds, 1),
        "responses_5xx": five_xx,
        "responses_5xx_v1_no_provider_now": tally.events["v1_no_provider_now"],
        "server_errors": five_xx - tally.events["v1_no_provider_now"],
        "transport_errors": dict(tally.transport_errors),
        "by_status": {str(status): count for status, count in sorted(tally.by_status.items())},
        "by_route": {
            route: {str(status): count for status, count in sorted(counts.items())}
            for route, counts in sorted(tally.by_route.items())
        },
        "daemon_deaths": tally.events["daemon_deaths"],
        "jobs_abandoned_by_dying_daemons": tally.events["jobs_abandoned_by_dying_daemons"],
        "jobs_open_when_load_stopped": draining[0],
        "jobs_open_when_load_stopped_by_provider": backlog,
        "jobs_open_after_drain": draining[-1],
        "drain_seconds": len(draining) - 1,
        "rss_samples": rss,
    }


def _memory(samples: list[tuple[float, float]], *, warmup_seconds: float) -> dict[str, Any]:
    """RSS after warm-up against the end: growth in MiB and the ratio of the two."""
    warm = next((rss for at, rss in samples if at >= warmup_seconds), samples[-1][1])
    end = samples[-1][1]
    return {
        "rss_mib_at_start": samples[0][1],
        "rss_mib_after_warmup": warm,
        "rss_mib_at_end": end,
        "rss_mib_max": max(rss for _, rss in samples),
        "rss_growth_mib": round(end - warm, 1),
        "ratio_rss_end_to_warmup": round(end / warm, 3),
    }


async def run(plan: Plan | None = None) -> dict[str, Any]:
    plan = plan or Plan()
    with tempfile.TemporaryDirectory() as folder:
        database_url = plan.database_url or f"sqlite+aiosqlite:///{folder}/dcp.db"
        port = _free_port()
        server = _start_server(folder, database_url, port=port, lease_seconds=plan.lease_seconds)
        try:
            await _ready(f"http://127.0.0.1:{port}", server)
            load = await _load(f"http://127.0.0.1:{port}", database_url, server.pid, plan)
        finally:
            _stop_server(server)
        tracebacks, errors = await asyncio.to_thread(_log_errors, Path(folder, "server.log"))
        audit = await _audit(database_url, put_in=plan.renters * CREDIT)
    samples = load.pop("rss_samples")
    summary = {
        **{key: getattr(plan, key) for key in ("minutes", "renters", "providers", "mean_life_seconds")},
        **load,
        **audit,
        "server_tracebacks": tracebacks,
        "server_log_errors": errors,
        **_memory(samples, warmup_seconds=min(60.0, plan.minutes * 12)),
    }
    return {"summary": summary, "rss_samples": samples}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=Plan.minutes)
    parser.add_argument("--renters", type=int, default=Plan.renters)
    parser.add_argument("--providers", type=int, default=Plan.providers)
    parser.add_argument(
        "--mean-life", type=float, default=Plan.mean_life_seconds, help="seconds a daemon lives"
    )
    args = parser.parse_args()
    plan = Plan(
        minutes=args.minutes, renters=args.renters, providers=args.providers, mean_life_seconds=args.mean_life
    )
    result = asyncio.run(run(plan))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
