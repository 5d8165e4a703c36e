"""The WebSocket link and the event stream on a real server: jobs are pushed, followers see them live."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx
import pytest
import websockets
from sqlalchemy import func, select

from dcp.jobs.sweeper import sweep_once
from dcp.kit.signing import signing_key_for, verify
from dcp.models import ProviderHeartbeat
from tests.support.factories import funded_renter, heartbeat, llm_job, online_provider, submit
from tests.support.polling import until


async def _connect(live, provider, **extra):
    headers = {"x-provider-key": provider.key, **extra}
    return await websockets.connect(f"{live.ws_url}/api/providers/link", additional_headers=headers)


async def _next(ws, kind, within=5.0):
    async with asyncio.timeout(within):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


@pytest.fixture
async def http(live):
    async with httpx.AsyncClient(base_url=live.url, timeout=10) as client:
        yield client


async def test_job_is_pushed_to_the_connected_provider_at_once(live, http, admin):
    provider = await online_provider(http)
    renter = await funded_renter(http, admin)
    async with await _connect(live, provider) as ws:
        hello = await _next(ws, "hello")
        assert hello["protocol"] == "dcp-link/1" and hello["provider_id"] == provider.id
        job = (await submit(http, renter, llm_job())).json()["job"]
        pushed = await _next(ws, "job", within=2)
        task = pushed["task"]
        assert task["spec"]["job_id"] == job["job_id"]
        assert verify(task["spec"], task["signature"], signing_key_for(provider.key))
        cancelled = await http.post(f"/api/jobs/{job['job_id']}/cancel", headers=renter.renter_headers)
        assert cancelled.status_code == 200
        stop = await _next(ws, "stop")
        assert stop == {"type": "stop", "job_id": job["job_id"], "status": "cancelled"}


async def test_a_job_pushed_as_its_link_dropped_is_sent_again_on_the_next(live, http, admin):
    provider = await online_provider(http)
    renter = await funded_renter(http, admin)
    async with await _connect(live, provider) as ws:
        await _next(ws, "hello")
        job = (await submit(http, renter, llm_job())).json()["job"]
        lost = await _next(ws, "job", within=2)  # as far as the daemon knows, it never came
    async with await _connect(live, provider) as ws:
        await _next(ws, "hello")
        again = (await _next(ws, "job", within=2))["task"]["spec"]
    assert (again["job_id"], again["lease_token"]) == (job["job_id"], lost["task"]["spec"]["lease_token"])


async def test_heartbeats_over_the_link(live, http):
    provider = await online_provider(http)
    async with await _connect(live, provider) as ws:
        await _next(ws, "hello")
        await ws.send(json.dumps({"type": "heartbeat", "body": {"gpu_status": {"gpu_util_pct": 77}}}))
        ack = await _next(ws, "heartbeat_ack")
        assert ack["body"]["message"] == "Heartbeat received"
        me = (await http.get("/api/providers/me", headers=provider.provider_headers)).json()["provider"]
        assert me["is_online"] is True


async def test_a_rotated_key_s_open_link_gets_nothing_more(live, http, admin):
    # Whoever holds the old key keeps no link: its next claim (a job, or its first look) or heartbeat closes
    # it instead of serving it.
    provider = await online_provider(http)
    renter = await funded_renter(http, admin)
    submitted = []
    for closes_it in ("heartbeat", "job"):
        async with await _connect(live, provider) as ws:
            await _next(ws, "hello")
            rotated = await http.post("/api/providers/rotate-key", headers=provider.provider_headers)
            provider = dataclasses.replace(provider, key=rotated.json()["api_key"])
            if closes_it == "job":  # placed on it, or refused if its link closed first: never sent over it
                answer = await submit(http, renter, llm_job())
                submitted += [answer.json()["job"]["job_id"]] if answer.status_code == 201 else []
            else:
                await ws.send(json.dumps({"type": "heartbeat", "body": {"gpu_status": {"gpu_util_pct": 1}}}))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await _next(ws, "job")
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    async with await _connect(live, provider) as ws:  # the new key's link gets the jobs
        await _next(ws, "hello")
        submitted.append((await submit(http, renter, llm_job())).json()["job"]["job_id"])
        assert (await _next(ws, "job"))["task"]["spec"]["job_id"] == submitted[0]


async def _online(http, provider) -> bool:
    me = (await http.get("/api/providers/me", headers=provider.provider_headers)).json()["provider"]
    return bool(me["is_online"])


async def test_a_closed_link_takes_its_provider_offline_at_once(live, http, admin, clock):
    provider = await online_provider(http)
    renter = await funded_renter(http, admin)
    async with await _connect(live, provider) as ws:
        await _next(ws, "hello")
        assert await _online(http, provider)
    await until(lambda: _offline(http, provider))  # its last heartbeat is seconds old, not 90 s
    refused = await submit(http, renter, llm_job())
    assert refused.status_code == 409 and "No online provider" in refused.json()["error"]
    live_only = (await http.get("/api/renters/available-providers", params={"live_only": "true"})).json()
    assert live_only["total"] == 0
    clock.advance(seconds=1)
    await heartbeat(http, provider)  # over HTTP, as a daemon that fell back to polling
    assert await _online(http, provider)


async def test_a_new_link_counts_and_an_old_one_closing_later_does_not(live, http):
    provider = await online_provider(http)
    old = await _connect(live, provider)
    await _next(old, "hello")
    async with await _connect(live, provider) as new:  # the daemon reconnected (to this or another replica)
        await _next(new, "hello")
        await old.close()  # the old link's end is noticed only now
        await asyncio.sleep(0.2)
        assert await _online(http, provider)
    await until(lambda: _offline(http, provider))


async def test_a_second_link_with_the_same_key_replaces_the_first(live, http, admin):
    # One link per provider: the one before is closed, not left taking jobs no one sees (relayed requests
    # went to the newer one only, and the newer one's end took the provider offline under a live link).
    provider = await online_provider(http)
    renter = await funded_renter(http, admin)
    async with await _connect(live, provider) as first:
        await _next(first, "hello")
        async with await _connect(live, provider) as second:
            await _next(second, "hello")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await _next(first, "job")
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4409
            job = (await submit(http, renter, llm_job())).json()["job"]
            assert (await _next(second, "job"))["task"]["spec"]["job_id"] == job["job_id"]
            assert await _online(http, provider)


async def test_jobs_waiting_on_a_provider_whose_link_closed_go_back_to_the_shared_queue(live, http, admin):
    provider = await online_provider(http)
    renter = await funded_renter(http, admin)
    first = (await submit(http, renter, llm_job(provider_id=provider.id))).json()["job"]
    waiting = (await submit(http, renter, llm_job())).json()["job"]
    assert waiting["provider_id"] is None or waiting["provider_id"] == provider.id
    async with await _connect(live, provider) as ws:
        await _next(ws, "hello")
        assert (await _next(ws, "job"))["task"]["spec"]["job_id"] == first["job_id"]
    await until(lambda: _offline(http, provider))
    app = live.app
    await sweep_once(app.state.db, settings=app.state.settings, now=app.state.clock.now(), hub=app.state.hub)
    again = (await http.get(f"/api/jobs/{waiting['job_id']}", headers=renter.renter_headers)).json()["job"]
    assert again["status"] == "pending" and again["provider_id"] is None


async def _offline(http, provider) -> bool:
    return not await _online(http, provider)


async def test_refuses_bad_keys_and_protocols_and_cuts_abusive_links(live, http, admin):
    renter = await funded_renter(http, admin)
    with pytest.raises(websockets.InvalidStatus):
        await websockets.connect(
            f"{live.ws_url}/api/providers/link", additional_headers={"x-provider-key": renter.key}
        )
    provider = await online_provider(http)
    with pytest.raises(websockets.InvalidStatus):
        await _connect(live, provider, **{"x-dcp-protocol": "dcp-link/99"})
    async with await _connect(live, provider) as ws:
        await _next(ws, "hello")
        for _ in range(6):
            await ws.send("{not json")
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=5)
        assert closed.value.rcvd.code == 1008


async def test_a_heartbeat_flood_is_refused_and_cut(live, http, database):
    provider = await online_provider(http)
    async with await _connect(live, provider) as ws:
        await _next(ws, "hello")
        beat = json.dumps({"type": "heartbeat", "body": {"gpu_status": {"gpu_util_pct": 50}}})
        for _ in range(7):
            await ws.send(beat)
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(ws.recv(), timeout=5)
        assert closed.value.rcvd.code == 1008

    async def written() -> int:
        async with database.reader() as session:
            beats = await session.execute(
                select(func.count())
                .select_from(ProviderHeartbeat)
                .where(ProviderHeartbeat.provider_id == provider.id)
            )
        return int(beats.scalar_one())

    async def both_written() -> bool:  # the link writes an accepted heartbeat apart from its loop
        return await written() >= 2

    await until(both_written)
    assert await written() == 2  # the registration's first heartbeat and the link's first one


async def test_sse_follows_status_progress_and_tokens(live, http, admin, clock):
    provider = await online_provider(http)
    renter = await funded_renter(http, admin)
    job = (await submit(http, renter, llm_job())).json()["job"]
    seen: list[tuple[str, dict]] = []
    first_event = asyncio.Event()

    async def follow() -> None:
        async with http.stream(
            "GET", f"/api/jobs/{job['job_id']}/events", headers=renter.renter_headers
        ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            kind = None
            async for line in stream.aiter_lines():
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    seen.append((kind, json.loads(line[6:])))
                    first_event.set()
                    if kind == "done":
                        return

    follower = asyncio.create_task(follow())
    await asyncio.wait_for(first_event.wait(), timeout=5)
    assert seen[0][0] == "status" and seen[0][1]["status"] == "pending"
    claimed = (
        await http.get("/api/providers/jobs/next", headers=provider.provider_headers, params={"wait": 0})
    ).json()
    lease = {"lease_token": claimed["spec"]["lease_token"]}
    url = f"/api/providers/jobs/{job['job_id']}"
    await http.post(f"{url}/start", headers=provider.provider_headers, json=lease)
    await http.post(
        f"{url}/events",
        headers=provider.provider_headers,
        json={**lease, "progress": 50, "tokens": ["Ri", "yadh"]},
    )
    clock.advance(seconds=3)
    await http.post(
        f"{url}/result",
        headers=provider.provider_headers,
        json={**lease, "status": "completed", "result": {"response": "Riyadh"}},
    )
    await asyncio.wait_for(follower, timeout=5)
    kinds = [kind for kind, _ in seen]
    assert kinds[-1] == "done"
    assert ("tokens", {"type": "tokens", "text": "Riyadh"}) in seen
    assert ("progress", {"type": "progress", "progress": 50}) in seen
    assert [data["status"] for kind, data in seen if kind == "status"][-1] == "completed"


async def test_a_stream_opened_with_a_key_since_rotated_ends(live, http, admin):
    await online_provider(http)
    renter = await funded_renter(http, admin)
    job = (await submit(http, renter, llm_job())).json()["job"]
    url = f"/api/jobs/{job['job_id']}/events"
    async with http.stream("GET", url, headers=renter.renter_headers, params={"heartbeat": 1}) as stream:
        lines = stream.aiter_lines()
        assert await anext(lines) == "event: status"
        rotated = await http.post("/api/renters/rotate-key", headers=renter.renter_headers)
        assert rotated.status_code == 200
        async with asyncio.timeout(5):  # asked again at the next keep-alive, a second later
            rest = [line async for line in lines]
    assert "event: error" in rest and not any(line.startswith("event: done") for line in rest)


async def test_long_poll_wakes_when_a_job_arrives(live, http, admin):
    provider = await online_provider(http)
    renter = await funded_renter(http, admin)
    waiting = asyncio.create_task(
        http.get("/api/providers/jobs/next", headers=provider.provider_headers, params={"wait": 10})
    )
    await asyncio.sleep(0.2)
    job = (await submit(http, renter, llm_job())).json()["job"]
    answer = await asyncio.wait_for(waiting, timeout=5)
    assert answer.status_code == 200 and answer.json()["spec"]["job_id"] == job["job_id"]
