"""Two replicas sharing a real redis-server: a renter following a job on one sees what its daemon reports to
the other, and a job submitted on one reaches a daemon linked to the other at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from dcp.jobs import queue_watch
from tests.support.factories import funded_renter, heartbeat, llm_job, online_provider, submit
from tests.support.provider_client import TestProvider
from tests.support.redis_server import running_redis
from tests.support.replicas import Replicas, two_replicas


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with running_redis() as url:
        yield url


@pytest.fixture
async def replicas(settings, database, clock, redis_url) -> AsyncIterator[Replicas]:
    async with two_replicas(settings, database, clock, redis_url=redis_url) as both:
        for server in (both.a, both.b):
            await asyncio.wait_for(server.app.state.event_bus.subscribed.wait(), timeout=10)
        yield both


async def _events(response: httpx.Response) -> AsyncIterator[tuple[str, dict]]:
    kind = None
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind is not None:
            yield kind, json.loads(line[6:])


async def _brief(events: AsyncIterator[tuple[str, dict]]) -> tuple[str, str | None]:
    kind, data = await anext(events)
    return kind, data.get("status") or data.get("text")


async def test_a_follower_on_one_replica_sees_what_the_daemon_reports_to_the_other(replicas, admin):
    a, b = replicas.a, replicas.b
    async with (
        httpx.AsyncClient(base_url=a.url, timeout=30) as at_a,
        httpx.AsyncClient(base_url=b.url, timeout=30) as at_b,
    ):
        daemon = TestProvider(at_a, await online_provider(at_a))
        renter = await funded_renter(at_a, admin)
        job = (await submit(at_a, renter, llm_job())).json()["job"]
        leased = await daemon.claim()
        assert leased is not None
        async with at_b.stream(
            "GET", f"/api/jobs/{job['job_id']}/events", headers=renter.renter_headers
        ) as s:
            seen = _events(s)
            assert (await anext(seen))[0] == "status"  # b's snapshot: subscribed before it was read
            assert (await daemon.start(leased)).status_code == 200
            assert (await daemon.events(leased, tokens=["Ri", "yadh"])).status_code == 200
            kinds = [await asyncio.wait_for(_brief(seen), timeout=10) for _ in range(2)]
        assert kinds == [("status", "running"), ("tokens", "Riyadh")]
        assert (await daemon.result(leased, result={"response": "Riyadh"})).status_code == 200


async def test_a_submit_on_one_replica_wakes_a_link_on_the_other(replicas, admin, monkeypatch):
    monkeypatch.setattr(queue_watch, "INTERVAL_SECONDS", 600.0)  # only the shared nudge can wake it in time
    a, b = replicas.a, replicas.b
    engine = await replicas.link(a)
    async with httpx.AsyncClient(base_url=b.url, timeout=30) as at_b:
        assert (await heartbeat(at_b, engine.account)).status_code == 200  # its GPU, for the job
        await asyncio.sleep(0.2)  # the link's first look at the queue, at connect, is over
        renter = await funded_renter(at_b, admin)
        job = (await submit(at_b, renter, llm_job())).json()["job"]
        assert job["provider_id"] == engine.account.id
        task = await asyncio.wait_for(engine.tasks.get(), timeout=10)  # pushed by a, woken by b's nudge
        assert task["spec"]["job_id"] == job["job_id"]


async def test_without_redis_a_replica_serves_its_own_followers(caplog):
    from dcp.jobs.event_bus import RedisBus
    from dcp.jobs.events import EventHub
    from tests.support.postgres import free_port

    hub = EventHub()
    bus = RedisBus(f"redis://127.0.0.1:{free_port()}/0", hub)  # nothing listens there
    bus.start()
    async with hub.follow("job-1") as queue:
        hub.publish("job-1", {"type": "tokens", "text": "Riyadh"})
        hub.nudge(7)
        assert queue.get_nowait() == {"type": "tokens", "text": "Riyadh"}
        for _ in range(100):  # the bus tries Redis, fails, and says so
            if "Redis is not answering" in caplog.text:
                break
            await asyncio.sleep(0.05)
    await bus.aclose()
    assert hub.share is None
    assert caplog.text.count("Redis is not answering") == 1  # said once, by both loops together
    assert "job events and wakeups stay within each replica" in caplog.text
