"""SIGKILL the server in the middle of a burst of submits, and of withdrawal approvals and payouts; start it
again and let the clients retry with the same idempotency keys: every job and withdrawal ends right, the
ledger checks pass, and no halala is made or lost."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import httpx

from dcp.billing.ledger import Account
from dcp.db.engine import open_database
from tests.process.server_process import (
    ADMIN_HEADERS,
    ServerProcess,
    assert_money_kept,
    complete_every_job,
    retry_until_answered,
)
from tests.process.test_replicas import _database_for
from tests.support.factories import funded_renter, online_provider, register_provider, settled_work

SUBMITS, PROVIDERS = 40, 16
PUT_IN = 100_000
IBAN = "SA0380000000608010167519"
LLM_JOB = {"job_type": "llm_inference", "duration_minutes": 1, "params": {"prompt": "hi"}}


async def _during_burst(
    server: ServerProcess, requests: list[asyncio.Task[int]], answered: asyncio.Event
) -> None:
    """Kill the server once the burst's first answer is back (the rest are in flight), then start it."""
    await asyncio.wait_for(answered.wait(), timeout=30)
    await server.kill()
    await server.start()
    retries = await asyncio.gather(*requests)
    assert max(retries) > 0, "the kill interrupted no request"


async def test_sigkill_during_a_burst_of_submits(tmp_path, database_url):
    url = await _database_for(database_url, tmp_path)
    server = ServerProcess(tmp_path, url, DCP_JOBS__LEASE_SECONDS="600")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
            provider = await online_provider(http)
            renter = await funded_renter(http, ADMIN_HEADERS, amount=PUT_IN)
            answered, job_ids = asyncio.Event(), set()

            async def submit(n: int) -> int:
                headers = {**renter.renter_headers, "Idempotency-Key": f"burst-{n}"}
                answer, failed = await retry_until_answered(
                    http, "POST", "/api/jobs/submit", headers=headers, json=LLM_JOB
                )
                answered.set()
                assert answer.status_code in (200, 201), answer.text
                job_ids.add(answer.json()["job"]["job_id"])
                return failed

            await _during_burst(server, [asyncio.create_task(submit(n)) for n in range(SUBMITS)], answered)
            assert len(job_ids) == SUBMITS  # one job per key, however often it was sent
            history = await http.get(
                "/api/jobs/history", headers=renter.renter_headers, params={"limit": 200}
            )
            assert history.json()["total"] == SUBMITS  # and no job the renter never heard of
            assert await complete_every_job(http, provider) == SUBMITS
            done = await http.get(
                "/api/jobs/history", headers=renter.renter_headers, params={"status": "completed"}
            )
            assert done.json()["total"] == SUBMITS
    finally:
        output = await server.stop()
    assert "Traceback" not in output, output
    checked = await server.check_ledger()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    await assert_money_kept(url, put_in=PUT_IN)


async def test_sigkill_during_withdrawal_approvals_and_payouts(tmp_path, database_url):
    url = await _database_for(database_url, tmp_path)
    server = ServerProcess(tmp_path, url)
    await server.start()
    db = open_database(url)
    try:
        async with httpx.AsyncClient(base_url=server.base, timeout=10) as http:
            renter = await funded_renter(http, ADMIN_HEADERS, amount=PUT_IN)
            withdrawals = []
            for n in range(PROVIDERS):  # each provider earned 1500 and asks for 1000 of it
                provider = await register_provider(http)
                await settled_work(
                    db,
                    renter_id=renter.id,
                    provider_id=provider.id,
                    held=2000,
                    cost=2000,
                    ref=f"work-{n}",
                    now=datetime.now(UTC),
                )
                asked = await http.post(
                    "/api/providers/withdrawals",
                    headers=provider.provider_headers,
                    json={"amount_halala": 1000, "iban": IBAN},
                )
                withdrawals.append(asked.json()["withdrawal"]["id"])
            answered = asyncio.Event()

            async def pay_out(withdrawal_id: int) -> int:
                path = f"/api/admin/withdrawals/{withdrawal_id}"
                approved, failed = await retry_until_answered(
                    http, "POST", f"{path}/approve", headers=ADMIN_HEADERS
                )
                answered.set()
                # A 409 saying it is approved (or paid) means the first try committed before the kill.
                assert approved.status_code == 200 or "that is approved" in approved.text, approved.text
                body = {"reference": f"bank-{withdrawal_id}"}
                paid, failed_too = await retry_until_answered(
                    http, "POST", f"{path}/paid", headers=ADMIN_HEADERS, json=body
                )
                assert paid.status_code == 200 or "that is paid" in paid.text, paid.text
                return failed + failed_too

            await _during_burst(server, [asyncio.create_task(pay_out(w)) for w in withdrawals], answered)
            listing = await http.get(
                "/api/admin/withdrawals", headers=ADMIN_HEADERS, params={"status": "paid"}
            )
            assert listing.json()["total"] == PROVIDERS
    finally:
        await db.dispose()
        output = await server.stop()
    assert "Traceback" not in output, output
    checked = await server.check_ledger()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    totals = await assert_money_kept(url, put_in=PUT_IN, paid_out=1000 * PROVIDERS)
    assert totals[Account.provider_earnings] == 500 * PROVIDERS
