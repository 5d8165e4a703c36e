"""The Python SDK (``dc1``) against a real server: every method, the error tree, retries on 429 only."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import dc1
import httpx
import pytest

from tests.support.daemon import running_daemon
from tests.support.factories import funded_renter, online_provider, register_renter, settled_work
from tests.support.provider_client import TestProvider

IBAN = "SA0380000000608010167519"


@pytest.fixture
async def http(live):
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        yield client


def _sdk(live, key=None, **kwargs) -> dc1.Client:
    return dc1.Client(api_key=key, base_url=live.url, **kwargs)


async def _call(function, *args, **kwargs):
    """The SDK is synchronous; the server shares this event loop, so the SDK runs in a thread."""
    return await asyncio.to_thread(function, *args, **kwargs)


async def test_renter_journey(live, http, admin, clock):
    provider = await online_provider(http)
    daemon = TestProvider(http, provider)
    renter = await funded_renter(http, admin, amount=5000)
    with _sdk(live, renter.key) as client:
        balance = await _call(client.balance)
        assert balance == dc1.Balance(5000, 0) and balance.balance_sar == Decimal("50.00")
        providers = await _call(client.providers.list, min_vram_gb=16)
        assert [p.id for p in providers] == [provider.id] and providers[0].is_live
        job = await _call(
            client.jobs.submit, "llm_inference", {"prompt": "Capital of Saudi Arabia?"}, duration_minutes=2
        )
        assert job.status == "pending" and job.cost_halala == 30
        assert not (await _call(client.jobs.output, job.job_id)).ready
        leased = await daemon.claim()
        await daemon.start(leased)
        clock.advance(seconds=20)
        await daemon.result(leased, result={"response": "Riyadh"}, tokens_generated=3)
        output = await _call(client.jobs.wait, job.job_id, timeout=10, interval=0.05)
        assert output.ready and output.text == "Riyadh" and output.actual_cost_halala == 5
        assert output.cost_sar == Decimal("0.05")
        history = await _call(lambda: list(client.jobs.history(page_size=1)))
        assert [j.job_id for j in history] == [job.job_id]
        me = await _call(client.me)
        assert me["renter"]["total_jobs"] == 1


async def test_a_real_daemon_streams_tokens_and_the_cost_settles(live, http, admin, tmp_path):
    renter = await funded_renter(http, admin, amount=5000)
    async with running_daemon(live.url, tmp_path) as provider:
        with _sdk(live, renter.key) as client:
            prompt = {"prompt": "The capital of Saudi Arabia is", "max_tokens": 16}
            job = await _call(
                client.jobs.submit, "llm_inference", prompt, duration_minutes=2, provider_id=provider.id
            )
            events = await _call(lambda: list(client.jobs.stream(job.job_id, timeout=120)))
            output = await _call(client.jobs.wait, job.job_id, timeout=30)
            settled = await _call(client.jobs.get, job.job_id)
            balance = await _call(client.balance)
    assert "".join(event.text for event in events).strip(), [event.type for event in events]
    assert events[-1].status == "completed" and output.text and output.text.strip()
    assert settled.actual_cost_halala is not None and output.actual_cost_halala == settled.actual_cost_halala
    assert settled.actual_cost_halala + settled.refunded_halala == job.cost_halala
    assert balance == dc1.Balance(5000 - settled.actual_cost_halala, 0)


async def test_polling_waits_raw_requests_and_a_missing_jobs_stream(live, http, admin):
    daemon = TestProvider(http, await online_provider(http))
    renter = await funded_renter(http, admin)
    with _sdk(live, renter.key) as client:
        job = await _call(client.jobs.submit, "llm", {"prompt": "hi"}, duration_minutes=1)
        leased = await daemon.claim()
        await daemon.start(leased)
        await daemon.result(leased, result={"response": "Riyadh"})
        output = await _call(client.jobs.wait, job.job_id, timeout=10, interval=0.05, stream=False)
        assert output.text == "Riyadh"
        answer = await _call(client.request, "GET", f"/api/jobs/{job.job_id}")
        assert answer.json()["job"]["status"] == "completed"
        with pytest.raises(dc1.NotFoundError):
            await _call(lambda: list(client.jobs.stream("job-missing")))


async def test_retried_submits_never_create_a_second_job(live, http, admin):
    await online_provider(http)
    renter = await funded_renter(http, admin)
    with _sdk(live, renter.key) as client:
        first = await _call(
            client.jobs.submit, "llm", {"prompt": "hi"}, duration_minutes=1, idempotency_key="k1"
        )
        again = await _call(
            client.jobs.submit, "llm", {"prompt": "hi"}, duration_minutes=1, idempotency_key="k1"
        )
        assert first.job_id == again.job_id


async def test_failures_raise_the_error_tree(live, http, admin):
    await online_provider(http)
    poor = await funded_renter(http, admin, amount=1)
    with _sdk(live, poor.key) as client:
        with pytest.raises(dc1.InsufficientBalanceError) as short:
            await _call(client.jobs.submit, "llm", {"prompt": "hi"}, duration_minutes=1)
        assert short.value.status == 402 and short.value.required_halala == 15
        with pytest.raises(dc1.NotFoundError):
            await _call(client.jobs.get, "job-missing")
        with pytest.raises(dc1.ValidationError):
            await _call(client.jobs.submit, "llm", {"prompt": "hi", "steps": 3}, duration_minutes=1)
    renter = await funded_renter(http, admin)
    with _sdk(live, renter.key) as client, pytest.raises(dc1.ProviderUnavailableError) as busy:
        huge = {"min_vram_gb": 80}  # no online provider has it: worth trying later, not a bad request
        await _call(client.jobs.submit, "llm", {"prompt": "hi"}, duration_minutes=1, gpu_requirements=huge)
    assert (busy.value.status, busy.value.code) == (409, "no_capacity_available")
    with _sdk(live, "dc1-renter-nope") as stranger, pytest.raises(dc1.AuthenticationError):
        await _call(stranger.balance)
    renter = await funded_renter(http, admin)
    with _sdk(live, renter.key) as client:
        job = await _call(client.jobs.submit, "llm", {"prompt": "hi"}, duration_minutes=1)
        await _call(client.jobs.cancel, job.job_id)
        with pytest.raises(dc1.JobFailedError) as failed:
            await _call(client.jobs.output, job.job_id)
        assert failed.value.refunded_halala == 15
        with pytest.raises(dc1.JobFailedError):
            await _call(client.jobs.wait, job.job_id, timeout=5, interval=0.05)


async def test_retries_only_what_the_api_calls_retryable():
    calls = {"count": 0}

    def answer(request: httpx.Request) -> httpx.Response:
        calls["count"] += 1
        if request.url.path == "/api/renters/balance":
            if calls["count"] < 3:
                envelope = {
                    "error": {
                        "message": "slow down",
                        "code": "rate_limit_exceeded",
                        "retry_after_seconds": 0.01,
                    },
                    "retry_after_seconds": 0.01,
                }
                return httpx.Response(429, json=envelope, headers={"retry-after": "1"})
            return httpx.Response(200, json={"balance_halala": 7, "held_halala": 0})
        return httpx.Response(400, json={"error": "Missing required fields: job_type"})

    client = dc1.Client(
        api_key="dc1-renter-x", base_url="http://dcp.test", transport=httpx.MockTransport(answer)
    )
    assert (
        client.balance().balance_halala == 7 and calls["count"] == 3
    )  # two 429s retried, honouring retry_after
    calls["count"] = 0
    with pytest.raises(dc1.ValidationError):
        client.jobs.get("job-1")
    assert calls["count"] == 1  # a validation error is never retried
    client = dc1.Client(
        api_key="dc1-renter-x",
        base_url="http://dcp.test",
        max_retries=0,
        transport=httpx.MockTransport(answer),
    )
    calls["count"] = 0
    with pytest.raises(dc1.RateLimitError) as limited:
        client.balance()
    assert limited.value.retry_after == 0.01


async def test_provider_and_admin_methods(live, http, admin):
    provider = await online_provider(http)
    with _sdk(live, provider.key) as client:
        me = await _call(client.me)
        assert me["provider"]["id"] == provider.id
        assert (await _call(client.earnings))["earnings_halala"] == 0
        with pytest.raises(dc1.ValidationError):
            await _call(client.withdrawals.request, 1000, IBAN)  # nothing earned yet
    with _sdk(live, admin_token=admin["x-admin-token"]) as operator:
        dashboard = await _call(operator.admin.dashboard)
        assert dashboard["stats"]["total_providers"] == 1
        assert (await _call(operator.admin.withdrawals.list))["summary"]["pending_count"] == 0
    renter = await register_renter(http)
    with _sdk(live, renter.key) as client, pytest.raises(dc1.AuthenticationError):
        await _call(client.admin.dashboard)


async def test_a_provider_withdraws_what_it_earned_and_an_admin_approves(live, http, admin, clock, database):
    provider = await online_provider(http)
    renter = await funded_renter(http, admin, amount=5000)
    await settled_work(
        database, renter_id=renter.id, provider_id=provider.id, held=2000, cost=2000, ref="w", now=clock.now()
    )
    with _sdk(live, provider.key) as client:
        earned = (await _call(client.earnings))["earnings_halala"]
        assert earned >= 1000, earned
        requested = await _call(client.withdrawals.request, 1000, IBAN, idempotency_key="payout-1")
        again = await _call(client.withdrawals.request, 1000, IBAN, idempotency_key="payout-1")  # answer lost
    assert requested["status"] == "pending" and requested["amount_halala"] == 1000
    assert again["id"] == requested["id"]
    with _sdk(live, admin_token=admin["x-admin-token"]) as operator:
        pending = await _call(operator.admin.withdrawals.list, status="pending")
        assert [w["id"] for w in pending["pending"]] == [requested["id"]], pending
        approved = await _call(operator.admin.withdrawals.approve, requested["id"])
        assert approved["status"] == "approved"
        with pytest.raises(dc1.ValidationError):
            await _call(operator.admin.withdrawals.approve, requested["id"])  # approved already
