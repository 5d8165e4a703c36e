"""A real provider daemon process (``dcp provider run``) connected to a live server, for end-to-end tests."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.support.factories import Account, register_provider

ONLINE_WITHIN_SECONDS = 30


@asynccontextmanager
async def running_daemon(base_url: str, home: Path, *, name: str = "Jeddah CPU") -> AsyncIterator[Account]:
    """A CPU provider's daemon process, its files under ``home``, yielded once the server sees it online."""
    async with httpx.AsyncClient(base_url=base_url) as http:
        provider = await register_provider(http, name=name, gpu_model="CPU")
    command = [sys.executable, "-m", "dcp.cli", "provider", "run", "--server", base_url]
    command += ["--key", provider.key, "--home", str(home / "daemon"), "--status-port", "0"]
    with (home / "daemon.log").open("w") as log:
        process = await asyncio.to_thread(subprocess.Popen, command, stdout=subprocess.DEVNULL, stderr=log)
    try:
        await _online(base_url, provider, process)
        yield provider
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 30)


async def _online(base_url: str, provider: Account, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + ONLINE_WITHIN_SECONDS
    async with httpx.AsyncClient(base_url=base_url) as http:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"the daemon exited with {process.returncode} (see daemon.log)"
            me = await http.get("/api/providers/me", headers=provider.provider_headers)
            if me.json()["provider"]["is_online"]:
                return
            await asyncio.sleep(0.1)
    raise AssertionError(f"the daemon was not online within {ONLINE_WITHIN_SECONDS} s")
