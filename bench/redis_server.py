"""A throwaway redis-server on loopback for a benchmark, pinned to the server core."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bench.processes import SERVER_CORE, free_port, start, stop, wait_listening


@dataclass(frozen=True)
class Redis:
    url: str
    pid: int


def available() -> bool:
    return shutil.which("redis-server") is not None


@asynccontextmanager
async def running() -> AsyncIterator[Redis]:
    """Nothing saved to disk; stopped after."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = await start(command, core=SERVER_CORE, env=dict(os.environ), cwd=tempfile.gettempdir())
    try:
        await wait_listening(port, process=process)
        yield Redis(f"redis://127.0.0.1:{port}/0", process.pid)
    finally:
        stop(process)
