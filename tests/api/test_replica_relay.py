"""Two replicas on one database, each a real server: a provider's link lands on one of them, and /v1 and
endpoint requests arriving at the other are relayed to it over HTTP, billed once by the replica that took
them, with the provider's concurrency counted where its link is."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from sqlalchemy import update

from dcp.gateway.routing import _rendezvous
from dcp.jobs.relay import INTERNAL_PATH, replica_token
from dcp.models import Provider
from tests.conftest import SECRET
from tests.support.factories import (
    Account,
    funded_renter,
    heartbeat,
    llm_job,
    online_provider,
    settled_money,
    submit,
)
from tests.support.postgres import free_port
from tests.support.provider_client import Leased, TestProvider
from tests.support.replicas import Replicas, two_replicas

CHAT = {
    "model": "fake-model",
    "messages": [{"role": "user", "content": "Capital of Saudi Arabia?"}],
    "max_tokens": 16,
}


@pytest.fixture
async def replicas(settings, database, clock) -> AsyncIterator[Replicas]:
    settings.gateway.first_token_timeout_seconds = 2.0
    async with two_replicas(settings, database, clock) as both:
        yield both


def _bearer(renter: Account) -> dict[str, str]:
    return {"authorization": f"Bearer {renter.key}"}


async def test_v1_requests_reach_a_provider_linked_to_the_other_replica(replicas, admin):
    a, b = replicas.a, replicas.b
    engine = await replicas.link(a)
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as http:
        renter = await funded_renter(http, admin)
        assert b.app.state.links.get(engine.account.id) is None  # its link is on a

        answer = await http.post("/v1/chat/completions", headers=_bearer(renter), json=CHAT)
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == "Riyadh"
        assert answer.headers["x-dcp-provider-attempts"] == "1"

        streamed = {**CHAT, "stream": True}
        async with http.stream("POST", "/v1/chat/completions", headers=_bearer(renter), json=streamed) as s:
            lines = [line async for line in s.aiter_lines() if line.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line[6:]) for line in lines[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Riyadh"
    assert not any("usage" in c for c in chunks)  # stripped by b, which billed it

    assert [json.loads(request["body"])["max_tokens"] for request in engine.requests] == [16, 16]
    # Each request billed once, by b: 11 + 3 tokens at 100 and 300 per million come to 1 halala.
    assert await settled_money(b, renter) == {"balance_halala": 10_000 - 2, "held_halala": 0}
    assert a.app.state.gateway.router.outstanding[engine.account.id] == 0  # a counted both, and let go
    for server, direction in ((b, "out"), (a, "in")):
        async with httpx.AsyncClient(base_url=server.url) as http:
            metrics = (await http.get("/metrics", headers=admin)).text
        assert f'dcp_gateway_relayed_total{{direction="{direction}"}} 2.0' in metrics


async def test_the_replica_holding_the_link_counts_the_providers_concurrency(replicas, admin):
    a, b = replicas.a, replicas.b
    engine = await replicas.link(a, behaviour="silent", concurrency=1)
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
        renter = await funded_renter(http, admin)
        at_a = asyncio.create_task(http.post("/v1/chat/completions", headers=_bearer(renter), json=CHAT))
        await asyncio.wait_for(engine.asked.wait(), timeout=10)  # a's own request holds the only slot
        at_b = await http.post(f"{b.url}/v1/chat/completions", headers=_bearer(renter), json=CHAT)
        assert at_b.status_code == 502, at_b.text
        error = at_b.json()["error"]
        assert error["code"] == "provider_unavailable" and "busy" in error["message"]
        assert len(engine.requests) == 1  # b's request never reached the engine
        assert (await at_a).status_code == 504  # the silent engine: a's request timed out
    await settled_money(b, renter)
    assert (await settled_money(a, renter)) == {"balance_halala": 10_000, "held_halala": 0}  # neither cost


async def test_a_silent_provider_is_let_go_on_both_replicas(replicas, admin):
    a, b = replicas.a, replicas.b
    engine = await replicas.link(a, behaviour="silent", concurrency=1)
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as http:
        renter = await funded_renter(http, admin)
        answer = await http.post("/v1/chat/completions", headers=_bearer(renter), json=CHAT)
    assert answer.status_code in (502, 504)  # whichever replica's first-token timeout ends it first
    outstanding = a.app.state.gateway.router.outstanding
    for _ in range(100):  # a gives the slot back at its own timeout, not a minute later
        if outstanding[engine.account.id] == 0:
            break
        await asyncio.sleep(0.05)
    assert outstanding[engine.account.id] == 0
    await settled_money(a, renter)
    assert await settled_money(b, renter) == {"balance_halala": 10_000, "held_halala": 0}


async def test_an_unreachable_replica_fails_over_to_another_provider(replicas, admin, database):
    a, b = replicas.a, replicas.b
    stranded, local = await replicas.link(a), await replicas.link(b)
    async with database.writer() as session:  # the replica holding its link no longer answers
        gone = f"http://127.0.0.1:{free_port()}"
        await session.execute(
            update(Provider).where(Provider.id == stranded.account.id).values(link_replica=gone)
        )
        await session.commit()
    # A conversation whose affinity picks the stranded provider first.
    prompt = next(
        text
        for text in (f"question {n}" for n in range(100))
        if _rendezvous(f"fake-model|{text}", stranded.account.id)
        > _rendezvous(f"fake-model|{text}", local.account.id)
    )
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as http:
        renter = await funded_renter(http, admin)
        body = {**CHAT, "messages": [{"role": "user", "content": prompt}]}
        answer = await http.post("/v1/chat/completions", headers=_bearer(renter), json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-dcp-provider-attempts"] == "2"
    assert len(local.requests) == 1 and not stranded.requests
    assert await settled_money(b, renter) == {"balance_halala": 10_000 - 1, "held_halala": 0}


async def test_an_endpoint_request_is_relayed_to_the_replica_holding_the_link(replicas, admin):
    a, b = replicas.a, replicas.b
    engine = await replicas.link(a)
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as at_a:
        assert (await heartbeat(at_a, engine.account)).status_code == 200  # its GPU, for vllm_serve
        renter = await funded_renter(at_a, admin)
        body = {"job_type": "vllm_serve", "duration_minutes": 30, "params": {"model": "gemma3-270m"}}
        job = (await submit(at_a, renter, body)).json()["job"]
    spec = (await asyncio.wait_for(engine.tasks.get(), timeout=10))["spec"]  # pushed over its link on a
    leased = Leased(spec["job_id"], spec["lease_token"], spec)
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as at_b:
        daemon = TestProvider(at_b, engine.account)
        assert (await daemon.start(leased)).status_code == 200
        assert (await daemon.events(leased, endpoint_url="serving")).status_code == 200
        output = await at_b.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)
        url = output.json()["result"]["endpoint_url"]
        assert url.startswith(b.url)  # the replica's own public URL
        answer = await at_b.post(f"{url}/chat/completions", json=CHAT)  # the URL is the credential
        assert answer.status_code == 200, answer.text
        assert answer.json()["choices"][0]["message"]["content"] == "Riyadh"
        assert engine.requests[-1]["job_id"] == job["job_id"]
        cancelled = await at_b.post(f"/api/jobs/{job['job_id']}/cancel", headers=renter.renter_headers)
        assert cancelled.status_code == 200


async def test_a_newer_link_on_another_replica_replaces_the_one_here(replicas, admin):
    a, b = replicas.a, replicas.b
    async with httpx.AsyncClient(base_url=a.url, timeout=30) as http:
        provider = await online_provider(http)
        renter = await funded_renter(http, admin)
        headers = {"x-provider-key": provider.key}
        here, there = (f"{server.ws_url}/api/providers/link" for server in (a, b))
        async with websockets.connect(here, additional_headers=headers) as old:
            assert json.loads(await old.recv())["type"] == "hello"
            async with websockets.connect(there, additional_headers=headers) as new:
                assert json.loads(await new.recv())["type"] == "hello"
                assert (await submit(http, renter, llm_job())).status_code == 201  # wakes the link on a
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    async with asyncio.timeout(10):
                        while True:
                            assert json.loads(await old.recv())["type"] != "job"  # never the job
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409


async def test_only_replicas_may_relay(replicas):
    relayed = {"x-dcp-provider": "1", "x-dcp-job": "pool", "x-dcp-path": "v1/chat/completions"}
    token = {"x-dcp-replica-token": replica_token(SECRET.encode())}
    async with httpx.AsyncClient(base_url=replicas.a.url, timeout=30) as http:
        stranger = await http.post(INTERNAL_PATH, headers=relayed, content=b"{}")
        assert stranger.status_code == 403 and "replicas" in stranger.json()["error"]
        forged = await http.post(INTERNAL_PATH, headers={**relayed, "x-dcp-replica-token": "0" * 64})
        assert forged.status_code == 403
        unnamed = await http.post(INTERNAL_PATH, headers={**token, "x-dcp-provider": "one"})
        assert unnamed.status_code == 400
        elsewhere = await http.post(INTERNAL_PATH, headers={**relayed, **token}, content=b"{}")
        assert elsewhere.status_code == 404 and "not on this replica" in elsewhere.json()["error"]
        spec = (await http.get("/docs/openapi.json")).json()
        assert INTERNAL_PATH not in spec["paths"]
