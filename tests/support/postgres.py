"""A throwaway PostgreSQL server on a free loopback port, for the test run only."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run the README's test command (it installs it)")
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """A throwaway server in a temporary folder; it can be stopped and started again on the same data
    directory and port (a restart under load), and removes itself at the end."""

    def __init__(self) -> None:
        self.bin_dir = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="dcp-pg-"))
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self.data, self.port = self.root / "data", free_port()
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "dcp", "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin_dir / tool), *args], check=True, capture_output=True, timeout=120
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session and shuts down cleanly; ``immediate`` is a crash."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "dcp", name)
        return f"postgresql+asyncpg://dcp@127.0.0.1:{self.port}/{name}"

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def running_postgres() -> Iterator[str]:
    """Start a server, yield an asyncpg URL to an empty database, stop and delete it afterwards."""
    server = PostgresServer()
    server.start()
    try:
        yield server.create_database("dcp_test")
    finally:
        server.stop("immediate")
        server.remove()


async def create_database(url: str, name: str) -> str:
    """A new empty database on the server of ``url``; returns its URL."""
    import asyncpg

    plain = url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(plain)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    return url.rsplit("/", 1)[0] + f"/{name}"
