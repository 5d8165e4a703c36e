"""DCP as the gateway under test: its own server process (SQLite), a funded renter, and pool providers on
real WebSocket links (the daemon's own link, relaying to the fake engine), all set up through the public HTTP
surface."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.processes import LOAD_CORE, SERVER_CORE, free_port, ready, start, stop

PROVIDERS = 4
PROVIDER_CONCURRENCY = 64
ADMIN = "dc1-admin-" + "g" * 40
_REPO = Path(__file__).parent.parent
_POOL = [sys.executable, "-m", "bench.fake_pool", "--concurrency", str(PROVIDER_CONCURRENCY)]


@dataclass(frozen=True)
class Server:
    port: int
    pids: tuple[int, ...]  # the server the requests go to first, then any other replica
    renter_headers: dict[str, str]


@asynccontextmanager
async def running(
    folder: Path, *, upstream_port: int, free_model: bool = False, relayed: bool = False
) -> AsyncIterator[Server]:
    """A server with its pool connected, relaying to the engine on ``upstream_port``. ``free_model`` prices
    the model at 0, so a request holds and settles nothing: a diagnostic that shows what the ledger's
    per-request writes cost. ``relayed``: a second replica on the same database takes the requests and
    relays each to the first, which holds the pool's links."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "DCP_DATA_DIR": str(folder),
        "DCP_ADMIN_TOKEN": ADMIN,
        "DCP_SECRET_KEY": "s" * 48,
        "DCP_HEARTBEAT_ONLINE_SECONDS": "600",
        # The benchmark measures the gateway, not the renter's rate limits.
        "DCP_GATEWAY__REQUESTS_PER_MINUTE": str(10**9),
        "DCP_GATEWAY__TOKENS_PER_MINUTE": str(10**12),
    }
    if free_model:
        env |= {"DCP_PRICING__DEFAULT_INPUT_PER_MILLION": "0", "DCP_PRICING__DEFAULT_OUTPUT_PER_MILLION": "0"}
    base, front = f"http://127.0.0.1:{port}", port
    servers = [await _serve(port, {**env, "DCP_REPLICA_URL": base}, folder, "server")]
    pool = None
    try:
        await ready(f"{base}/docs/openapi.json", process=servers[0])
        if relayed:  # started once the first has migrated the database
            front = free_port()
            replica = {**env, "DCP_REPLICA_URL": f"http://127.0.0.1:{front}"}
            servers.insert(0, await _serve(front, replica, folder, "replica"))
            await ready(f"http://127.0.0.1:{front}/docs/openapi.json", process=servers[0])
        renter_key, provider_keys = await _accounts(base)
        ready_file = folder / "pool.ready"
        upstream = f"http://127.0.0.1:{upstream_port}"
        pool = await start(
            [*_POOL, "--base", base, "--upstream", upstream, "--ready-file", str(ready_file), *provider_keys],
            core=LOAD_CORE,
            env=dict(os.environ),
            cwd=str(_REPO),
            log=folder / "pool.log",
        )
        await _wait_for(ready_file, process=pool)
        yield Server(
            front, tuple(server.pid for server in servers), {"authorization": f"Bearer {renter_key}"}
        )
    finally:
        if pool:
            stop(pool)
        for server in servers:
            stop(server)


async def _serve(port: int, env: dict[str, str], folder: Path, name: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "dcp.cli", "serve", "--port", str(port)]
    return await start(command, core=SERVER_CORE, env=env, cwd=str(folder), log=folder / f"{name}.log")


async def _accounts(base: str) -> tuple[str, list[str]]:
    """A renter with a large balance, and the providers' keys."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        keys = []
        for n in range(PROVIDERS):
            body = {"name": f"pool {n}", "email": f"pool{n}@bench.sa", "gpu_model": "RTX 4090", "os": "linux"}
            answer = await http.post("/api/providers/register", json=body)
            answer.raise_for_status()
            keys.append(answer.json()["api_key"])
        answer = await http.post("/api/renters/register", json={"name": "bench", "email": "bench@bench.sa"})
        answer.raise_for_status()
        renter = answer.json()
        credit = await http.post(
            f"/api/admin/renters/{renter['renter_id']}/credit",
            headers={"x-admin-token": ADMIN, "Idempotency-Key": "bench-gateway"},
            json={"amount_halala": 100_000_000, "reason": "gateway benchmark"},
        )
        credit.raise_for_status()
    return renter["api_key"], keys


async def _wait_for(path: Path, *, process: subprocess.Popen[bytes], seconds: float = 30) -> None:
    for _ in range(int(seconds * 10)):
        if await asyncio.to_thread(path.exists):
            return
        if process.poll() is not None:
            raise RuntimeError("the fake pool providers exited before connecting")
        await asyncio.sleep(0.1)
    raise RuntimeError("the fake pool providers did not connect in time")
