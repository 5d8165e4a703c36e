"""Servers under test, pinned to the server core: ``dcp serve`` (limits raised) and the bare FastAPI app."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.processes import SERVER_CORE, free_port, ready, start, stop, wait_listening

ADMIN = "dc1-admin-" + "h" * 40
SECRET = "s" * 48
REPO = Path(__file__).parent.parent
_UNLIMITED = str(10**9)


@dataclass(frozen=True)
class Running:
    port: int
    pid: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def server_env(folder: Path, *, database_url: str = "", **extra: str) -> dict[str, str]:
    """The server's environment: its own data folder, fixed secrets, and limits a benchmark never hits."""
    env = {
        **os.environ,
        "DCP_DATA_DIR": str(folder),
        "DCP_ADMIN_TOKEN": ADMIN,
        "DCP_SECRET_KEY": SECRET,
        "DCP_HEARTBEAT_ONLINE_SECONDS": "600",
        # Thousands of sign-ups and requests from one loopback address, as many daemons and renters send.
        "DCP_LIMITS__SIGNUPS_PER_HOUR_PER_IP": _UNLIMITED,
        "DCP_LIMITS__REQUESTS_PER_MINUTE_PER_KEY": _UNLIMITED,
        "DCP_LIMITS__REQUESTS_PER_MINUTE_PER_IP": _UNLIMITED,
        **extra,
    }
    if database_url:
        env["DCP_DATABASE_URL"] = database_url
    return env


def sqlite_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'dcp.db'}"


@asynccontextmanager
async def dcp(folder: Path, env: dict[str, str], *, core: int = SERVER_CORE) -> AsyncIterator[Running]:
    """``dcp serve`` (it migrates its database first) until the block ends."""
    await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    port = free_port()
    command = [sys.executable, "-m", "dcp.cli", "serve", "--port", str(port)]
    server = await start(command, core=core, env=env, cwd=str(folder), log=folder / "server.log")
    try:
        await ready(f"http://127.0.0.1:{port}/docs/openapi.json", process=server)
        yield Running(port, server.pid)
    finally:
        await asyncio.to_thread(stop, server)


@asynccontextmanager
async def bare(*, core: int = SERVER_CORE) -> AsyncIterator[Running]:
    """The bare FastAPI endpoint (``bench/bare_app.py``)."""
    port = free_port()
    command = [sys.executable, "-m", "bench.bare_app", "--port", str(port)]
    server = await start(command, core=core, env=dict(os.environ), cwd=str(REPO))
    try:
        await wait_listening(port, process=server, seconds=30)
        yield Running(port, server.pid)
    finally:
        await asyncio.to_thread(stop, server)


async def funded_renter(base: str, *, name: str = "bench", halala: int = 100_000_000) -> tuple[int, str]:
    """A renter registered over HTTP and credited by the admin; its id and key."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        answer = await http.post("/api/renters/register", json={"name": name, "email": f"{name}@bench.sa"})
        answer.raise_for_status()
        renter = answer.json()
        credit = await http.post(
            f"/api/admin/renters/{renter['renter_id']}/credit",
            headers={"x-admin-token": ADMIN, "Idempotency-Key": f"bench-{name}"},
            json={"amount_halala": halala, "reason": "benchmark"},
        )
        credit.raise_for_status()
    return int(renter["renter_id"]), str(renter["api_key"])
