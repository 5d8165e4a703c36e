"""A `dcp serve` process the fault tests can kill and start again, and the money checks they end with."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from dcp.billing import ledger
from dcp.billing.invariants import all_problems
from dcp.billing.ledger import Account
from dcp.db.engine import open_database
from tests.process.test_replicas import ADMIN
from tests.process.test_serve import _start, _stop, _wait_ready
from tests.support import factories
from tests.support.postgres import free_port

ADMIN_HEADERS = {"x-admin-token": ADMIN}
# The clients of these tests retry hard from one address; the abuse limits are tested elsewhere.
UNLIMITED = {
    "DCP_LIMITS__REQUESTS_PER_MINUTE_PER_KEY": "1000000",
    "DCP_LIMITS__REQUESTS_PER_MINUTE_PER_IP": "1000000",
    "DCP_LIMITS__SIGNUPS_PER_HOUR_PER_IP": "1000000",
}


class ServerProcess:
    """`dcp serve` on a fixed loopback port, started again on the same port after a kill."""

    def __init__(self, folder: Path, database_url: str, **env: str) -> None:
        self.folder, self.port = folder, free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            "DCP_DATABASE_URL": database_url,
            "DCP_ADMIN_TOKEN": ADMIN,
            "DCP_SECRET_KEY": "k" * 48,
            **UNLIMITED,
            **env,
        }
        self.process: subprocess.Popen[str] | None = None
        self.output = ""

    async def start(self) -> None:
        self.process = _start(self.folder, self.port, self.env)
        await asyncio.to_thread(_wait_ready, self.base, self.process)

    async def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, whatever was in flight is cut off."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        output, _ = await asyncio.to_thread(self.process.communicate, timeout=20)
        self.output += output

    async def stop(self) -> str:
        if self.process is not None and self.process.poll() is None:
            self.output += await asyncio.to_thread(_stop, self.process)
        return self.output

    async def check_ledger(self) -> subprocess.CompletedProcess[str]:
        """`dcp admin check-ledger` against this server's database, as an operator would run it."""
        return await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "dcp.cli", "admin", "check-ledger"],
            env={**os.environ, "DCP_DATA_DIR": str(self.folder / "data"), **self.env},
            capture_output=True,
            text=True,
            timeout=60,
        )


async def money_report(database_url: str) -> tuple[list[str], dict[Account, int]]:
    """The ledger's problems and the total of each kind of account (over every owner)."""
    db = open_database(database_url)
    try:
        async with db.reader() as session:
            problems = await all_problems(session)
            totals = {account: await ledger.total(session, account) for account in Account}
    finally:
        await db.dispose()
    return problems, totals


async def assert_money_kept(database_url: str, *, put_in: int, paid_out: int = 0) -> dict[Account, int]:
    """The invariants hold and every halala is where it should be: what came in, less what was paid
    out to providers' banks, is exactly what renters, providers and the platform hold."""
    problems, totals = await money_report(database_url)
    assert problems == [], problems
    held_by_people = sum(amount for account, amount in totals.items() if account is not Account.cash)
    assert held_by_people == put_in - paid_out, totals
    assert -totals[Account.cash] == put_in - paid_out, totals
    return totals


async def retry_until_answered(
    http: httpx.AsyncClient, method: str, url: str, *, within: float = 60, **kwargs: object
) -> tuple[httpx.Response, int]:
    """What a careful client does while the server restarts: retry the same request (with its same
    idempotency key) until an answer other than a connection error or a 5xx comes back; returns the
    answer and how many tries failed before it."""
    deadline = asyncio.get_running_loop().time() + within
    failed = 0
    while asyncio.get_running_loop().time() < deadline:
        try:
            answer = await http.request(method, url, **kwargs)  # type: ignore[arg-type]
            if answer.status_code < 500:
                return answer, failed
        except httpx.TransportError:
            pass
        failed += 1
        await asyncio.sleep(0.05)
    raise AssertionError(f"{method} {url} was never answered")


async def complete_every_job(http: httpx.AsyncClient, provider: factories.Account) -> int:
    """Claim, start and complete jobs as a daemon would until none is left; returns how many it did."""
    headers = provider.provider_headers
    done = 0
    while True:
        claimed = await http.get("/api/providers/jobs/next", headers=headers, params={"wait": 0})
        if claimed.status_code == 204:
            return done
        assert claimed.status_code == 200, claimed.text
        spec = claimed.json()["spec"]
        lease = {"lease_token": spec["lease_token"]}
        url = f"/api/providers/jobs/{spec['job_id']}"
        assert (await http.post(f"{url}/start", headers=headers, json=lease)).status_code == 200
        result = {**lease, "status": "completed", "result": {"response": "ok"}}
        finished = await http.post(f"{url}/result", headers=headers, json=result)
        assert finished.status_code == 200, finished.text
        done += 1
