"""Restart PostgreSQL under load: requests during the outage fail at once with a 503 JSON body that names
the request id, none hangs; once the database is back the same server process serves again (no restart),
every accepted job is there once, and the ledger holds."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.process.server_process import ADMIN_HEADERS, ServerProcess, assert_money_kept, complete_every_job
from tests.support.factories import Account, funded_renter, online_provider
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.skipif(
    "postgres" not in BACKENDS, reason="PostgreSQL is not among DCP_TEST_BACKENDS in this run"
)

WORKERS, PUT_IN = 6, 100_000
LLM_JOB = {"job_type": "llm_inference", "duration_minutes": 1, "params": {"prompt": "hi"}}
HANG_SECONDS = 10.0


@dataclass
class Load:
    """What the renters' requests got back, by phase: before, during and after the outage."""

    phase: str = "before"
    answers: list[tuple[str, int | str, float, httpx.Response | None]] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def count(self, phase: str, *, ok: bool) -> int:
        return sum(1 for p, status, _, _ in self.answers if p == phase and (status in (200, 201)) == ok)

    async def until(self, phase: str, *, ok: bool, at_least: int, within: float = 30) -> None:
        deadline = time.monotonic() + within
        while self.count(phase, ok=ok) < at_least:
            assert time.monotonic() < deadline, f"{phase}: fewer than {at_least} answers with ok={ok}"
            await asyncio.sleep(0.05)

    async def request(
        self, http: httpx.AsyncClient, method: str, url: str, **kwargs: object
    ) -> httpx.Response | None:
        phase, began = self.phase, time.monotonic()
        try:
            answer = await http.request(method, url, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            self.answers.append((phase, type(exc).__name__, time.monotonic() - began, None))
            return None
        self.answers.append((phase, answer.status_code, time.monotonic() - began, answer))
        return answer


async def _renter(http: httpx.AsyncClient, renter: Account, worker: int, load: Load) -> None:
    """Submit jobs one after another, each retried under its own key until accepted, and read the balance."""
    n = 0
    while not load.stop.is_set():
        headers = {**renter.renter_headers, "Idempotency-Key": f"load-{worker}-{n}"}
        while True:  # a key is never abandoned: an unanswered submit may have been committed
            answer = await load.request(http, "POST", "/api/jobs/submit", headers=headers, json=LLM_JOB)
            if answer is not None and answer.status_code in (200, 201):
                load.accepted.add(answer.json()["job"]["job_id"])
                break
            await asyncio.sleep(0.05)  # a client's back-off
        n += 1
        await load.request(http, "GET", "/api/renters/balance", headers=renter.renter_headers)


async def test_postgres_restart_under_load(tmp_path):
    postgres = PostgresServer()
    postgres.start()
    url = postgres.create_database("dcp")
    server = ServerProcess(tmp_path, url)
    try:
        await server.start()
        async with httpx.AsyncClient(base_url=server.base, timeout=HANG_SECONDS * 1.5) as http:
            provider = await online_provider(http)
            renter = await funded_renter(http, ADMIN_HEADERS, amount=PUT_IN)
            load = Load()
            workers = [asyncio.create_task(_renter(http, renter, n, load)) for n in range(WORKERS)]
            await load.until("before", ok=True, at_least=10)
            load.phase = "outage"
            await asyncio.to_thread(postgres.stop, "fast")
            await load.until("outage", ok=False, at_least=2 * WORKERS)
            await asyncio.to_thread(postgres.start)
            load.phase = "after"
            await load.until("after", ok=True, at_least=10)
            load.stop.set()
            await asyncio.gather(*workers)
            assert server.process is not None and server.process.poll() is None  # recovered, not restarted
            _assert_clean_failures(load)
            assert await complete_every_job(http, provider) == len(load.accepted)
            history = await http.get("/api/jobs/history", headers=renter.renter_headers, params={"limit": 1})
            assert history.json()["total"] == len(load.accepted)  # each accepted once, no stray job
        await server.stop()
        await assert_money_kept(url, put_in=PUT_IN)
    finally:
        await server.stop()
        postgres.stop("immediate")
        postgres.remove()


def _assert_clean_failures(load: Load) -> None:
    statuses = Counter(status for _, status, _, _ in load.answers)
    assert set(statuses) <= {200, 201, 503}, statuses
    assert max(seconds for _, _, seconds, _ in load.answers) < HANG_SECONDS, "a request hung"
    for _, status, _, answer in load.answers:
        if status == 503 and answer is not None:
            body = answer.json()
            assert "database is unavailable" in body["error"] and body["request_id"]
            assert answer.headers["x-request-id"] == body["request_id"]
            assert answer.headers["retry-after"]
