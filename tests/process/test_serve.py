"""``dcp serve`` as a real process: migrations on start, secrets printed once, the seed's requests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.factories import funded_renter, llm_job, online_provider, submit
from tests.support.postgres import create_database, free_port


def _start(tmp_path, port, env_extra=None):
    env = {**os.environ, "DCP_DATA_DIR": str(tmp_path / "data"), **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "dcp.cli", "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait_ready(base: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {process.stdout.read()}")
        try:
            if httpx.get(f"{base}/docs/openapi.json", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not start in 30 s")


def _stop(process: subprocess.Popen) -> str:
    process.terminate()
    output, _ = process.communicate(timeout=20)
    return output


@pytest.fixture
async def served(tmp_path, database_url):
    """A server process on a fresh database of this run's backend, which it migrates at start."""
    port = free_port()
    env = {}
    if database_url.startswith("postgresql"):
        env["DCP_DATABASE_URL"] = await create_database(database_url, f"serve_{port}")
    process = _start(tmp_path, port, env)
    base = f"http://127.0.0.1:{port}"
    _wait_ready(base, process)
    yield base, process
    if process.poll() is None:
        _stop(process)


def test_seed_walkthrough_against_a_real_server(served, tmp_path):
    base, process = served
    admin_token = json.loads((tmp_path / "data" / "secrets.json").read_text())["admin_token"]
    renter = httpx.post(
        f"{base}/api/dc1/renters/register",
        json={
            "name": "Fatima Al-Saud",
            "email": "fatima@example.sa",
            "organization": "Riyadh AI Lab",
            "use_case": "llm_inference",
            "phone": "+966500000000",
        },
        timeout=10,
    )
    assert renter.status_code == 201, renter.text
    provider = httpx.post(
        f"{base}/api/providers/register",
        json={
            "name": "Riyadh RTX Node",
            "email": "provider@example.com",
            "gpu_model": "RTX 4090",
            "os": "linux",
        },
        timeout=10,
    )
    key = provider.json()["api_key"]
    beat = httpx.post(
        f"{base}/api/dc1/providers/heartbeat",
        json={
            "api_key": key,
            "gpu_status": {
                "gpu_name": "NVIDIA RTX 4090",
                "gpu_vram_mib": 24564,
                "gpu_util_pct": 5,
                "temp_c": 40,
                "daemon_version": "0.1.0",
            },
        },
        timeout=10,
    )
    assert beat.json()["message"] == "Heartbeat received"
    live = httpx.get(f"{base}/api/renters/available-providers", timeout=10).json()
    assert [p["is_live"] for p in live["providers"]] == [True]
    dashboard = httpx.get(
        f"{base}/api/dc1/admin/dashboard", headers={"x-admin-token": admin_token}, timeout=10
    )
    assert dashboard.json()["stats"]["online_now"] == 1
    secrets = [renter.json()["api_key"], key, IBAN, IBAN[-8:]]
    _use_secrets_where_they_could_leak(base, renter_key=secrets[0], provider_key=key, admin_token=admin_token)
    output = _stop(process)
    assert output.count(admin_token) == 1  # printed once, at first start
    assert [secret for secret in secrets if secret in output] == []  # keys and IBANs are never logged


IBAN = "SA0380000000608010167519"


def _use_secrets_where_they_could_leak(
    base: str, *, renter_key: str, provider_key: str, admin_token: str
) -> None:
    """Keys in a query string, in a bearer header, in a signed-in form, wrong ones, and an IBAN in a body."""
    with httpx.Client(base_url=base, timeout=10) as http:
        assert http.get("/api/providers/me", params={"key": provider_key}).status_code == 200
        assert http.get("/v1/models", headers={"authorization": f"Bearer {renter_key}"}).status_code == 200
        assert http.get("/api/renters/me", params={"key": renter_key + "x"}).status_code == 401
        withdrawal = http.post(
            "/api/providers/withdrawals",
            headers={"x-provider-key": provider_key},
            json={"amount_halala": 10_000, "iban": IBAN},
        )
        assert withdrawal.status_code == 400  # nothing earned yet; the IBAN was still sent
        form = http.get("/signin")
        csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        assert http.post("/signin", data={"csrf": csrf, "key": renter_key}).status_code == 303
        assert http.post("/signin", data={"csrf": csrf, "key": admin_token}).status_code == 303


def test_check_ledger_command(tmp_path):
    env = {**os.environ, "DCP_DATA_DIR": str(tmp_path)}
    subprocess.run(
        [sys.executable, "-m", "dcp.cli", "migrate"], env=env, check=True, cwd=tmp_path, timeout=60
    )
    done = subprocess.run(
        [sys.executable, "-m", "dcp.cli", "admin", "check-ledger"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and "ledger: ok" in done.stdout


async def test_stopping_ends_the_streams_of_waiting_jobs(served, tmp_path):
    base, process = served
    admin_token = json.loads((tmp_path / "data" / "secrets.json").read_text())["admin_token"]
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        renter = await funded_renter(http, {"x-admin-token": admin_token})
        await online_provider(http)
        await submit(http, renter, llm_job())  # takes the provider's one slot
        waiting = (await submit(http, renter, llm_job())).json()["job"]
        path = f"/api/jobs/{waiting['job_id']}/events"
        async with http.stream("GET", path, headers=renter.renter_headers) as stream:
            lines = stream.aiter_lines()
            assert await anext(lines) == "event: status"
            process.terminate()
            # Without an end, keep-alives every 15 s would hold the stream open, and the server, for good.
            rest = await asyncio.wait_for(_all(lines), timeout=15)
    assert rest[0].startswith("data: ") and not any(line.startswith("event:") for line in rest)
    process.communicate(timeout=15)  # it ended too


async def _all(lines) -> list[str]:
    return [line async for line in lines]
