"""A throwaway PostgreSQL server on loopback for a benchmark, pinned to the server core (as the tests do)."""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.processes import SERVER_CORE, free_port, pinned


@dataclass(frozen=True)
class Postgres:
    url: str  # postgresql+asyncpg://… of the benchmark's database
    root: Path

    def pid(self) -> int:
        """The postmaster's pid (its backends are its children, so cpu_seconds counts them too)."""
        return int((self.root / "data" / "postmaster.pid").read_text().split()[0])


def available() -> bool:
    return bool(glob.glob("/usr/lib/postgresql/*/bin/postgres"))


def _tools() -> Path:
    return Path(sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))[-1]).parent


def _run(root: Path, tool: str, *args: str, core: int | None = None) -> None:
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []  # postgres refuses root
    command = [*as_user, str(_tools() / tool), *args]
    command = pinned(command, core=core) if core is not None else command
    subprocess.run(command, check=True, capture_output=True, timeout=120)  # noqa: S603 (fixed arguments, no shell)


@asynccontextmanager
async def running(*, core: int = SERVER_CORE, max_connections: int = 200) -> AsyncIterator[Postgres]:
    """initdb, start on a free port (fsync off: the data is thrown away) with one database; removed after."""
    root = Path(tempfile.mkdtemp(prefix="dcp-bench-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
    data, port = root / "data", free_port()
    # Autovacuum looks every second (default 60 s): tables grow from empty within a run, and plans made for an
    # empty table (a scan where an index walk stops early) would otherwise serve the whole run.
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections={max_connections}"
        " -c autovacuum_naptime=1"
    )
    try:
        await asyncio.to_thread(
            _run, root, "initdb", "-D", str(data), "-A", "trust", "-U", "dcp", "--no-sync"
        )
        await asyncio.to_thread(
            _run,
            root,
            "pg_ctl",
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "start",
            core=core,
        )
        await asyncio.to_thread(
            _run, root, "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "dcp", "bench"
        )
        yield Postgres(f"postgresql+asyncpg://dcp@127.0.0.1:{port}/bench", root)
    finally:
        if (data / "postmaster.pid").exists():
            await asyncio.to_thread(_run, root, "pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
