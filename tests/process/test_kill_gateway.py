"""SIGKILL the server while /v1 requests wait on their provider (each with its worst case reserved from the
renter's allowance), restart it: the sweeper releases the dead process's allowance once it stops being
renewed, what was answered and settled stays billed once, nothing else is charged, and the ledger balances."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys

import httpx
import websockets

from dcp.billing import ledger
from dcp.billing.ledger import Account as Ledger
from dcp.db.engine import open_database
from tests.process.test_replicas import ADMIN, _database_for
from tests.process.test_serve import _start, _wait_ready
from tests.support.factories import Account, funded_renter, register_provider
from tests.support.fake_engine import FakeEngine
from tests.support.polling import until
from tests.support.postgres import free_port

CHAT = {"model": "fake-model", "messages": [{"role": "user", "content": "Capital?"}], "max_tokens": 16}
ANSWERED, IN_FLIGHT = 5, 20


async def _answer_then_hang(
    http: httpx.AsyncClient, base: str, renter: Account
) -> tuple[list[asyncio.Task], FakeEngine]:
    """ANSWERED requests billed, then IN_FLIGHT requests waiting on a provider that never answers."""
    auth = {"authorization": f"Bearer {renter.key}"}
    answering = await FakeEngine(base, await register_provider(http)).start()
    for _ in range(ANSWERED):
        assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
    await answering.stop()
    silent = FakeEngine(base, await register_provider(http), behaviour="silent", concurrency=64)
    await silent.start()

    async def all_settled() -> bool:  # settlements are written just after the responses
        usage = await http.get("/api/renters/usage", headers=renter.renter_headers)
        return usage.json()["total"] == ANSWERED

    await until(all_settled, within=30)
    waiting = [
        asyncio.create_task(http.post("/v1/chat/completions", headers=auth, json=CHAT))
        for _ in range(IN_FLIGHT)
    ]

    async def all_waiting() -> bool:
        return len(silent.requests) == IN_FLIGHT

    await until(all_waiting, within=30)
    return waiting, silent


async def test_sigkill_with_requests_in_flight(tmp_path, database_url):
    env = {
        "DCP_DATABASE_URL": await _database_for(database_url, tmp_path),
        "DCP_ADMIN_TOKEN": ADMIN,
        "DCP_SECRET_KEY": "k" * 48,
        "DCP_GATEWAY__FIRST_TOKEN_TIMEOUT_SECONDS": "120",
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    servers = [_start(tmp_path, port, env)]
    try:
        _wait_ready(base, servers[0])
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            renter = await funded_renter(http, {"x-admin-token": ADMIN}, amount=10_000)
            waiting, silent = await _answer_then_hang(http, base, renter)
            os.kill(servers[0].pid, signal.SIGKILL)
            servers[0].communicate(timeout=10)
            outcomes = await asyncio.gather(*waiting, return_exceptions=True)
            with contextlib.suppress(websockets.ConnectionClosed):  # the silent provider's link died too
                await silent.stop()
            assert all(isinstance(outcome, httpx.TransportError) for outcome in outcomes)
            fast = {
                "DCP_GATEWAY__ALLOWANCE_EXPIRY_SECONDS": "1",
                "DCP_GATEWAY__ALLOWANCE_RENEW_SECONDS": "0.2",
                "DCP_JOBS__SWEEP_INTERVAL_SECONDS": "0.2",
            }
            servers.append(_start(tmp_path, port, {**env, **fast}))
            await asyncio.to_thread(_wait_ready, base, servers[1])

            async def money() -> dict:
                return (await http.get("/api/renters/balance", headers=renter.renter_headers)).json()

            async def released() -> bool:
                return (await money())["held_halala"] == 0

            await until(released, within=30)
            # 1 halala per answered request; the requests cut by the kill cost nothing.
            assert (await money())["balance_halala"] == 10_000 - ANSWERED
            usage = (await http.get("/api/renters/usage", headers=renter.renter_headers)).json()
            assert usage["total"] == ANSWERED and {row["cost_halala"] for row in usage["requests"]} == {1}
    finally:
        for server in servers:
            if server.poll() is None:
                server.terminate()
                server.communicate(timeout=20)
    await _ledger_checks(tmp_path, env, charged=ANSWERED)


async def test_sigkill_while_answering_many(tmp_path, database_url):
    """Killed while requests are being answered and settled just after their responses: a request whose
    settlement was not committed is charged to nobody, every other exactly once, and no halala is made or
    lost."""
    env = {
        "DCP_DATABASE_URL": await _database_for(database_url, tmp_path),
        "DCP_ADMIN_TOKEN": ADMIN,
        "DCP_SECRET_KEY": "k" * 48,
        "DCP_GATEWAY__REQUESTS_PER_MINUTE": str(10**6),  # the renter's limit is not what is tested
    }
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    servers = [_start(tmp_path, port, env)]
    answered: list[int] = []
    try:
        _wait_ready(base, servers[0])
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            renter = await funded_renter(http, {"x-admin-token": ADMIN}, amount=10_000)
            auth = {"authorization": f"Bearer {renter.key}"}
            engine = await FakeEngine(base, await register_provider(http), concurrency=64).start()

            async def keep_asking() -> None:
                while True:
                    try:
                        got = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
                    except httpx.TransportError:
                        return
                    answered.append(got.status_code)

            askers = [asyncio.create_task(keep_asking()) for _ in range(16)]
            await until(lambda: _at_least(answered, 60), within=30)
            os.kill(servers[0].pid, signal.SIGKILL)
            servers[0].communicate(timeout=10)
            await asyncio.gather(*askers)
            with contextlib.suppress(websockets.ConnectionClosed):
                await engine.stop()
            fast = {
                "DCP_GATEWAY__ALLOWANCE_EXPIRY_SECONDS": "1",
                "DCP_GATEWAY__ALLOWANCE_RENEW_SECONDS": "0.2",
                "DCP_JOBS__SWEEP_INTERVAL_SECONDS": "0.2",
            }
            servers.append(_start(tmp_path, port, {**env, **fast}))
            await asyncio.to_thread(_wait_ready, base, servers[1])

            async def released() -> bool:
                balance = await http.get("/api/renters/balance", headers=renter.renter_headers)
                return balance.json()["held_halala"] == 0

            await until(released, within=30)
            balance = (await http.get("/api/renters/balance", headers=renter.renter_headers)).json()
            usage = (await http.get("/api/renters/usage?limit=1", headers=renter.renter_headers)).json()
    finally:
        for server in servers:
            if server.poll() is None:
                server.terminate()
                server.communicate(timeout=20)
    assert set(answered) == {200}
    # Each settled request cost 1 halala; those answered but not yet settled at the kill cost nothing.
    charged = 10_000 - balance["balance_halala"]
    assert 0 < charged == usage["total"] <= len(answered)
    await _ledger_checks(tmp_path, env, charged=charged)


async def _at_least(items: list[int], count: int) -> bool:
    return len(items) >= count


async def _ledger_checks(tmp_path, env: dict[str, str], *, charged: int) -> None:
    """``dcp admin check-ledger`` passes, and every halala is where it should be: the renter's top-up less
    what was charged, which went to the providers and the platform, nothing held, nothing made or lost."""
    checked = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dcp.cli", "admin", "check-ledger"],
        env={**os.environ, **env, "DCP_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    db = open_database(env["DCP_DATABASE_URL"])
    try:
        async with db.reader() as session:
            totals = {account: await ledger.total(session, account) for account in Ledger}
    finally:
        await db.dispose()
    assert sum(totals.values()) == 0 and totals[Ledger.cash] == -10_000
    assert totals[Ledger.renter_available] == 10_000 - charged and totals[Ledger.renter_held] == 0
    assert totals[Ledger.provider_earnings] + totals[Ledger.platform_fees] == charged
