"""The daemon's side of the server's answers: a result too large for the server fails the job instead of
being sent again for hours while the provider's slot stays taken; an answer that is not the API's JSON (a
proxy's maintenance page) or a link frame that is not a JSON object is waited out, never the end of the
daemon's loops."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import websockets

from dcp.agent.link import Link, ServerClient, UnreadableAnswer
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


async def test_a_page_instead_of_the_api_s_answer_is_an_error_to_wait_out_not_a_crash():
    html = {"content-type": "text/html"}
    page = httpx.Response(200, text="<html>down for maintenance</html>", headers=html)
    answers = iter([page, httpx.Response(200, json={"status": "completed"})])
    recovering = httpx.MockTransport(lambda request: next(answers))
    server = ServerClient("http://dcp.test", "k", transport=recovering)
    assert await server.report("job-1", {"status": "completed"}, attempts=3) == "completed"  # sent again
    server = ServerClient("http://dcp.test", "k", transport=httpx.MockTransport(lambda request: page))
    with pytest.raises(UnreadableAnswer, match="answered 200 with text/html") as unreadable:
        await server.heartbeat({})
    assert isinstance(unreadable.value, httpx.HTTPError)  # the heartbeat loop logs it and beats again


async def test_link_frames_that_are_not_json_objects_are_skipped_and_the_link_goes_on():
    task = {"spec": {"job_id": "job-1"}, "signature": "s"}

    async def server(ws: Any) -> None:
        for frame in ("<html>", "[1, 2]", '{"type": "job"}', json.dumps({"type": "job", "task": task})):
            await ws.send(frame)
        await ws.wait_closed()

    received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    async with websockets.serve(server, "127.0.0.1", 0) as serving:
        port = serving.sockets[0].getsockname()[1]
        client = ServerClient(f"http://127.0.0.1:{port}", "dc1-provider-k")
        link = Link(client, on_task=received.put, on_stop=lambda job_id: None, has_free_slot=lambda: True)
        running = asyncio.create_task(link.run())
        try:
            assert await asyncio.wait_for(received.get(), timeout=5) == task
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await client.close()


async def test_a_server_older_than_the_failure_s_cause_still_gets_the_report():
    seen: list[dict[str, Any]] = []

    def older(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        if "cause" in seen[-1]:  # its JobResult forbids fields it does not know
            return httpx.Response(400, json={"error": "Unknown field: cause"})
        return httpx.Response(200, json={"status": "failed"})

    server = ServerClient("http://dcp.test", "k", transport=httpx.MockTransport(older))
    report = {"lease_token": "l", "status": "failed", "error": "exit 3", "cause": "job"}
    assert await server.report("job-1", report, attempts=3) == "failed"  # refunded there, but delivered
    assert [("cause" in body) for body in seen] == [True, False]
    await server.close()
