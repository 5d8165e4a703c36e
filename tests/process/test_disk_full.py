"""Fill the disk under a SQLite database: writes are refused with a clear 507 and change nothing, reads
still answer, the file stays sound, and once space is freed writes work again with the ledger intact."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.process.server_process import ADMIN_HEADERS, ServerProcess, assert_money_kept, complete_every_job
from tests.support.factories import funded_renter, online_provider

PUT_IN = 100_000
LLM_JOB = {"job_type": "llm_inference", "duration_minutes": 1, "params": {"prompt": "hi"}}
MARGIN = 256 * 1024  # left free by the ballast: a few transactions' worth


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted as the server's data folder."""
    folder = tmp_path / "data"
    folder.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a 2 MiB tmpfs to fill needs root, and this run is not root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(folder)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a 2 MiB tmpfs to fill: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "--lazy", str(folder)], check=True)


def _integrity(database: Path) -> str:
    with closing(sqlite3.connect(database)) as connection:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])


def _fill(folder: Path) -> Path:
    """Take all the space but MARGIN with a ballast file."""
    space = os.statvfs(folder)
    ballast = folder / "ballast"
    ballast.write_bytes(b"\0" * max(0, space.f_bavail * space.f_frsize - MARGIN))
    return ballast


async def test_a_full_disk_refuses_writes_cleanly_and_recovers(tiny_disk, tmp_path):
    database = tiny_disk / "dcp.db"
    url = f"sqlite+aiosqlite:///{database}"
    server = ServerProcess(tmp_path, url)
    await server.start()
    statuses: Counter[int] = Counter()
    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            provider = await online_provider(http)
            renter = await funded_renter(http, ADMIN_HEADERS, amount=PUT_IN)
            ballast = _fill(tiny_disk)

            async def submit(key: str) -> httpx.Response:
                headers = {**renter.renter_headers, "Idempotency-Key": key}
                answer = await http.post("/api/jobs/submit", headers=headers, json=LLM_JOB)
                statuses[answer.status_code] += 1
                return answer

            for n in range(1000):
                refused = await submit(f"fill-{n}")
                if refused.status_code != 201:
                    break
            assert refused.status_code == 507, refused.text
            assert statuses[201] > 0, "the disk was full before the first write"
            assert "Storage is full" in refused.json()["error"] and refused.json()["request_id"]
            assert (await submit("while-full")).status_code == 507
            balance = await http.get("/api/renters/balance", headers=renter.renter_headers)
            assert balance.status_code == 200  # reads still answer
            assert _integrity(database) == "ok"

            ballast.unlink()
            assert (await submit("after")).status_code == 201
            accepted = statuses[201]
            assert await complete_every_job(http, provider) == accepted
            history = await http.get("/api/jobs/history", headers=renter.renter_headers, params={"limit": 1})
            assert history.json()["total"] == accepted  # a refused submit left nothing behind
    finally:
        await server.stop()
    assert set(statuses) == {201, 507}, statuses
    assert _integrity(database) == "ok"
    await assert_money_kept(url, put_in=PUT_IN)
