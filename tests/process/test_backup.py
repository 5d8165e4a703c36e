"""`dcp admin backup` while the server takes traffic, `restore` into a fresh path: the ledger is intact;
restore refuses what could destroy data; PostgreSQL gets the pg_dump and pg_restore commands, which work."""

from __future__ import annotations

import asyncio
import functools
import os
import shlex
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from dcp.admin.backup import postgres_advice
from tests.conftest import BACKENDS
from tests.process.server_process import (
    ADMIN_HEADERS,
    ServerProcess,
    assert_money_kept,
    complete_every_job,
)
from tests.support.factories import Account, funded_renter, online_provider
from tests.support.postgres import PostgresServer

PUT_IN = 100_000
LLM_JOB = {"job_type": "llm_inference", "duration_minutes": 1, "params": {"prompt": "hi"}}


def _dcp(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DCP_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "dcp.cli", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def _traffic(http: httpx.AsyncClient, renter: Account, provider: Account, stop: asyncio.Event) -> int:
    """Submit and run jobs one after another until told to stop; returns how many ran."""
    done = 0
    while not stop.is_set():
        answer = await http.post("/api/jobs/submit", headers=renter.renter_headers, json=LLM_JOB)
        assert answer.status_code == 201, answer.text
        done += await complete_every_job(http, provider)
    return done


def _balances(path: Path) -> list[tuple[str, int, int]]:
    with closing(sqlite3.connect(path)) as connection:
        rows = connection.execute(
            "SELECT kind, owner_id, balance FROM ledger_accounts ORDER BY id"
        ).fetchall()
    return [tuple(row) for row in rows]


async def _while_jobs_run(server: ServerProcess, action: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``action`` in a thread while a renter's jobs run one after another; returns what it returned
    and how many jobs ran meanwhile."""
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        provider = await online_provider(http)
        renter = await funded_renter(http, ADMIN_HEADERS, amount=PUT_IN)
        stop = asyncio.Event()
        traffic = asyncio.create_task(_traffic(http, renter, provider, stop))
        try:
            result = await asyncio.to_thread(action)
        finally:
            stop.set()
        return result, await traffic


async def test_sqlite_backup_while_serving_restores_an_intact_ledger(tmp_path):
    live = tmp_path / "live.db"
    url = f"sqlite+aiosqlite:///{live}"
    server = ServerProcess(tmp_path, url)
    await server.start()
    try:
        during = functools.partial(_dcp, url, "admin", "backup", str(tmp_path / "during.db"))
        made, ran = await _while_jobs_run(server, during)
        assert made.returncode == 0 and ran > 0, made.stderr
        quiet = await asyncio.to_thread(_dcp, url, "admin", "backup", str(tmp_path / "quiet.db"))
        assert quiet.returncode == 0, quiet.stderr
        held = await asyncio.to_thread(_dcp, url, "admin", "restore", "--force", str(tmp_path / "quiet.db"))
        assert held.returncode == 1 and "stop the server first" in held.stderr  # the server has it open
        live_balances = _balances(live)
    finally:
        await server.stop()
    for name in ("during", "quiet"):
        fresh = tmp_path / f"restored-{name}" / "dcp.db"
        restored = _dcp(f"sqlite+aiosqlite:///{fresh}", "admin", "restore", str(tmp_path / f"{name}.db"))
        assert restored.returncode == 0 and "ledger: ok" in restored.stdout, restored.stdout + restored.stderr
        await assert_money_kept(f"sqlite+aiosqlite:///{fresh}", put_in=PUT_IN)
    assert _balances(tmp_path / "restored-quiet" / "dcp.db") == live_balances


def test_restore_refuses_what_could_destroy_data(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'dcp.db'}"
    assert _dcp(url, "migrate").returncode == 0
    assert _dcp(url, "admin", "backup", str(tmp_path / "copy.db")).returncode == 0
    again = _dcp(url, "admin", "backup", str(tmp_path / "copy.db"))
    assert again.returncode == 1 and "exists; choose a new file" in again.stderr
    over = _dcp(url, "admin", "restore", str(tmp_path / "copy.db"))
    assert over.returncode == 1 and "pass --force" in over.stderr
    (tmp_path / "notes.txt").write_text("not a database")
    stranger = _dcp(url, "admin", "restore", "--force", str(tmp_path / "notes.txt"))
    assert stranger.returncode == 1 and "is not a DCP database" in stranger.stderr
    forced = _dcp(url, "admin", "restore", "--force", str(tmp_path / "copy.db"))
    assert forced.returncode == 0 and "ledger: ok" in forced.stdout


def test_postgres_backup_names_pg_dump_without_the_password(tmp_path):
    url = "postgresql+asyncpg://dcp:s3cret@db.internal:5433/dcp"
    answer = _dcp(url, "admin", "backup", str(tmp_path / "dcp.dump"))
    assert answer.returncode == 2
    assert (
        f"pg_dump --format=custom --file={tmp_path}/dcp.dump postgresql://dcp@db.internal:5433/dcp"
        in answer.stderr
    )
    assert "s3cret" not in answer.stderr + answer.stdout


def _run_advice(command: str, path: Path, url: str, bin_dir: Path) -> None:
    """Run the command `dcp admin backup|restore` prints, as an operator would paste it."""
    line = postgres_advice(command, path, url).splitlines()[2].strip()
    tool, *args = shlex.split(line)
    subprocess.run([str(bin_dir / tool), *args], check=True, capture_output=True, timeout=120)


@pytest.mark.skipif(
    "postgres" not in BACKENDS, reason="PostgreSQL is not among DCP_TEST_BACKENDS in this run"
)
async def test_the_documented_pg_dump_and_pg_restore_keep_the_ledger(tmp_path):
    postgres = PostgresServer()
    postgres.start()
    try:
        url = postgres.create_database("live")
        server = ServerProcess(tmp_path, url)
        await server.start()
        try:
            dump = tmp_path / "dcp.dump"
            pg_dump = functools.partial(_run_advice, "backup", dump, url, postgres.bin_dir)
            _, ran = await _while_jobs_run(server, pg_dump)
            assert ran > 0
        finally:
            await server.stop()
        restored = postgres.create_database("restored")
        await asyncio.to_thread(_run_advice, "restore", dump, restored, postgres.bin_dir)
        await assert_money_kept(restored, put_in=PUT_IN)
    finally:
        postgres.stop("immediate")
        postgres.remove()
