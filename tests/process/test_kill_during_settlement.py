"""SIGKILL the server while providers report results (each report settles a job), restart it, let the
providers retry: every job ends settled exactly once and the ledger balances."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import httpx

from tests.process.test_replicas import ADMIN, _database_for
from tests.process.test_serve import _start, _stop, _wait_ready
from tests.support.postgres import free_port

JOBS = 24


async def _report_until_acknowledged(
    http: httpx.AsyncClient, base: str, key: str, spec: dict, first_ack: asyncio.Event, retries: list[int]
) -> str:
    """What the daemon does: retry the result with the same lease until the server answers."""
    body = {"lease_token": spec["lease_token"], "status": "completed", "result": {"response": "ok"}}
    for attempt in range(400):
        try:
            answer = await http.post(
                f"{base}/api/providers/jobs/{spec['job_id']}/result",
                headers={"x-provider-key": key},
                json=body,
            )
            if answer.status_code == 200:
                first_ack.set()
                retries.append(attempt)
                return str(answer.json()["status"])
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("the result was never acknowledged")


async def test_sigkill_while_settling(tmp_path, database_url):
    env = {
        "DCP_DATABASE_URL": await _database_for(database_url, tmp_path),
        "DCP_ADMIN_TOKEN": ADMIN,
        "DCP_SECRET_KEY": "k" * 48,
        "DCP_JOBS__LEASE_SECONDS": "600",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = _start(tmp_path, port, env)
    _wait_ready(base, server)
    async with httpx.AsyncClient(timeout=10) as http:
        provider = (
            await http.post(
                f"{base}/api/providers/register",
                json={"name": "n", "email": "n@x.sa", "gpu_model": "RTX 4090", "os": "linux"},
            )
        ).json()
        key = provider["api_key"]
        await http.post(
            f"{base}/api/providers/heartbeat", headers={"x-provider-key": key}, json={"slots": JOBS}
        )
        renter = (
            await http.post(f"{base}/api/renters/register", json={"name": "r", "email": "r@x.sa"})
        ).json()
        await http.post(
            f"{base}/api/admin/renters/{renter['renter_id']}/credit",
            headers={"x-admin-token": ADMIN, "Idempotency-Key": "k"},
            json={"amount_halala": 10_000, "reason": "test"},
        )
        specs = []
        for _ in range(JOBS):
            await http.post(
                f"{base}/api/jobs/submit",
                headers={"x-renter-key": renter["api_key"]},
                json={
                    "job_type": "llm",
                    "duration_minutes": 1,
                    "provider_id": provider["provider_id"],
                    "params": {"prompt": "hi"},
                },
            )
        for _ in range(JOBS):
            answer = await http.get(
                f"{base}/api/providers/jobs/next", headers={"x-provider-key": key}, params={"wait": 0}
            )
            if answer.status_code == 204:
                break
            specs.append(answer.json()["spec"])
    assert specs
    async with httpx.AsyncClient(timeout=5) as http:
        first_ack, retries = asyncio.Event(), []
        reports = [
            asyncio.create_task(_report_until_acknowledged(http, base, key, spec, first_ack, retries))
            for spec in specs
        ]
        await asyncio.wait_for(first_ack.wait(), timeout=10)
        os.kill(server.pid, signal.SIGKILL)  # in the middle of the burst of settlements
        server.communicate(timeout=10)
        server = _start(tmp_path, port, env)
        await asyncio.to_thread(_wait_ready, base, server)
        statuses = await asyncio.gather(*reports)
    assert set(statuses) == {"completed"} and len(statuses) == JOBS
    assert max(retries) > 0, "the kill interrupted no report"
    _stop(server)
    checked = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dcp.cli", "admin", "check-ledger"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
