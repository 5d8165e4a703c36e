"""Two server processes on one database dispatch a burst of jobs to many simulated providers:
no job is lost, none runs twice, and the ledger balances."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections import Counter

import httpx

from tests.process.test_serve import _start, _stop, _wait_ready
from tests.support.postgres import create_database, free_port

ADMIN = "dc1-admin-" + "r" * 40
PROVIDERS, JOBS = 8, 48


async def _database_for(database_url: str, tmp_path) -> str:
    if database_url.startswith("postgresql"):
        return await create_database(database_url, f"replicas_{free_port()}")
    return f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"


async def _provider_worker(bases: list[str], key: str, claimed: list[str], stop: asyncio.Event) -> None:
    headers = {"x-provider-key": key}
    async with httpx.AsyncClient(timeout=30) as http:
        turn = 0
        while not stop.is_set():
            base = bases[turn % 2]  # each simulated daemon talks to both replicas
            turn += 1
            answer = await http.get(f"{base}/api/providers/jobs/next", headers=headers, params={"wait": 1})
            if answer.status_code == 204:
                continue
            assert answer.status_code == 200, answer.text
            spec = answer.json()["spec"]
            claimed.append(spec["job_id"])
            lease = {"lease_token": spec["lease_token"]}
            url = f"{bases[turn % 2]}/api/providers/jobs/{spec['job_id']}"
            assert (await http.post(f"{url}/start", headers=headers, json=lease)).status_code == 200
            done = await http.post(
                f"{url}/result",
                headers=headers,
                json={**lease, "status": "completed", "result": {"response": "ok"}},
            )
            assert done.status_code == 200, done.text


async def test_two_replicas_dispatch_a_burst_exactly_once(tmp_path, database_url):
    env = {
        "DCP_DATABASE_URL": await _database_for(database_url, tmp_path),
        "DCP_ADMIN_TOKEN": ADMIN,
        "DCP_SECRET_KEY": "k" * 48,
    }
    ports = [free_port(), free_port()]
    servers = []
    for index, port in enumerate(ports):  # the second starts after the first migrated the database
        (tmp_path / f"r{index}").mkdir()
        servers.append(_start(tmp_path / f"r{index}", port, env))
        _wait_ready(f"http://127.0.0.1:{port}", servers[-1])
    bases = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            keys = []
            for n in range(PROVIDERS):
                body = {"name": f"node {n}", "email": f"node{n}@x.sa", "gpu_model": "RTX 4090", "os": "linux"}
                key = (await http.post(f"{bases[n % 2]}/api/providers/register", json=body)).json()["api_key"]
                await http.post(
                    f"{bases[n % 2]}/api/providers/heartbeat",
                    headers={"x-provider-key": key},
                    json={"gpu_status": {"gpu_name": "NVIDIA RTX 4090", "gpu_vram_mib": 24564}},
                )
                keys.append(key)
            renter = (
                await http.post(
                    f"{bases[0]}/api/renters/register", json={"name": "burst", "email": "burst@x.sa"}
                )
            ).json()
            await http.post(
                f"{bases[1]}/api/admin/renters/{renter['renter_id']}/credit",
                headers={"x-admin-token": ADMIN, "Idempotency-Key": "burst"},
                json={"amount_halala": 100_000, "reason": "burst"},
            )
            claimed: list[str] = []
            stop = asyncio.Event()
            workers = [asyncio.create_task(_provider_worker(bases, key, claimed, stop)) for key in keys]
            headers = {"x-renter-key": renter["api_key"]}
            body = {"job_type": "llm_inference", "duration_minutes": 1, "params": {"prompt": "hi"}}
            submits = await asyncio.gather(
                *(
                    http.post(f"{bases[n % 2]}/api/jobs/submit", headers=headers, json=body)
                    for n in range(JOBS)
                )
            )
            assert [s.status_code for s in submits] == [201] * JOBS
            job_ids = {s.json()["job"]["job_id"] for s in submits}
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                done = await http.get(
                    f"{bases[0]}/api/jobs/history",
                    headers=headers,
                    params={"status": "completed", "limit": 200},
                )
                if done.json()["total"] == JOBS:
                    break
                await asyncio.sleep(0.2)
            stop.set()
            await asyncio.gather(*workers)
        counts = Counter(claimed)
        assert set(counts) == job_ids, "a job was lost"
        assert max(counts.values()) == 1, "a job was claimed twice"
    finally:
        outputs = [_stop(server) for server in servers]
    assert all("Traceback" not in output for output in outputs), outputs
    checked = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dcp.cli", "admin", "check-ledger"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr
