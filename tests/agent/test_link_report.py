"""The daemon's result delivery against the real app: a result too large for the server fails the job
instead of being sent again for hours while the provider's slot stays taken."""

from __future__ import annotations

import httpx

from dcp.agent.link import ServerClient
from tests.support.factories import funded_renter, llm_job, online_provider, submit
from tests.support.provider_client import TestProvider


async def test_a_result_too_large_to_deliver_fails_the_job_and_refunds_it(client, admin, settings):
    provider = await online_provider(client)
    renter = await funded_renter(client, admin)
    job = (await submit(client, renter, llm_job())).json()["job"]
    daemon = TestProvider(client, provider)
    leased = await daemon.claim()
    await daemon.start(leased)
    server = ServerClient("http://testserver", provider.key, transport=client._transport)
    huge = {"lease_token": leased.lease_token, "status": "completed", "result": {"response": "x" * 2_000_000}}
    assert len(huge["result"]["response"]) > settings.max_body_bytes
    assert await server.report(job["job_id"], huge, attempts=3) == "failed"  # at once, not 3 refusals
    await server.close()
    ended = (await client.get(f"/api/jobs/{job['job_id']}", headers=renter.renter_headers)).json()["job"]
    assert ended["status"] == "failed" and "larger than the server accepts" in ended["error"]
    balance = (await client.get("/api/renters/balance", headers=renter.renter_headers)).json()
    assert balance["held_halala"] == 0 and balance["balance_halala"] == 10_000  # refunded in full


async def test_a_refusal_is_final_and_an_outage_is_waited_out():
    answers = iter([httpx.Response(503), httpx.Response(200, json={"status": "completed"})])
    recovering = httpx.MockTransport(lambda request: next(answers))
    server = ServerClient("http://dcp.test", "k", transport=recovering)
    assert await server.report("job-1", {"status": "completed"}, attempts=3) == "completed"
    refusing = httpx.MockTransport(lambda request: httpx.Response(401, text="A provider key is required"))
    server = ServerClient("http://dcp.test", "k", transport=refusing)
    assert await server.report("job-1", {"status": "completed"}, attempts=3) == (
        "refused (401): A provider key is required"
    )
