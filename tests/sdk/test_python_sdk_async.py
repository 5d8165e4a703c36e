"""``dc1.AsyncClient`` against a real server: the surface of ``dc1.Client``, the live stream, the helpers."""

from __future__ import annotations

import asyncio
import base64
import inspect
import time
from decimal import Decimal

import dc1
import httpx
import pytest

from dcp.jobs.endpoint import endpoint_url
from tests.support.factories import funded_renter, online_provider, register_renter
from tests.support.provider_client import TestProvider

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


@pytest.fixture
async def http(live):
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        yield client


def _sdk(live, key=None, **kwargs) -> dc1.AsyncClient:
    return dc1.AsyncClient(api_key=key, base_url=live.url, **kwargs)


async def _finish(daemon: TestProvider, **result) -> None:
    leased = await daemon.claim()
    await daemon.start(leased)
    await daemon.result(leased, **result)


async def test_renter_journey(live, http, admin, clock):
    provider = await online_provider(http)
    daemon = TestProvider(http, provider)
    renter = await funded_renter(http, admin, amount=5000)
    async with _sdk(live, renter.key) as client:
        balance = await client.balance()
        assert balance == dc1.Balance(5000, 0) and balance.balance_sar == Decimal("50.00")
        providers = await client.providers.list(min_vram_gb=16)
        assert [p.id for p in providers] == [provider.id]
        job = await client.jobs.submit("llm_inference", {"prompt": "Capital?"}, duration_minutes=2)
        assert job.status == "pending" and job.cost_halala == 30
        assert not (await client.jobs.output(job.job_id)).ready
        leased = await daemon.claim()
        await daemon.start(leased)
        clock.advance(seconds=20)
        await daemon.result(leased, result={"response": "Riyadh"}, tokens_generated=3)
        seen: list[dc1.Event] = []
        output = await client.jobs.wait(job.job_id, timeout=10, interval=0.05, on_event=seen.append)
        assert output.ready and output.text == "Riyadh" and output.cost_sar == Decimal("0.05")
        assert [(e.type, e.status) for e in seen] == [("status", "completed"), ("done", "completed")]
        second = await client.jobs.submit("llm", {"prompt": "again"}, duration_minutes=1)
        history = [j.job_id async for j in client.jobs.history(page_size=1)]
        assert history == [second.job_id, job.job_id]  # two pages of one
        assert [j.job_id async for j in client.jobs.history(status="completed")] == [job.job_id]
        assert (await client.me())["renter"]["total_jobs"] == 2
        assert (await client.jobs.cancel(second.job_id)).status == "cancelled"
        assert (await client.request("GET", "/api/renters/balance")).json()["held_halala"] == 0


async def test_the_stream_follows_a_job_live(live, http, admin):
    daemon = TestProvider(http, await online_provider(http))
    renter = await funded_renter(http, admin)
    async with _sdk(live, renter.key) as client:
        job = await client.jobs.submit("llm", {"prompt": "Capital?"}, duration_minutes=1)
        events = client.jobs.stream(job.job_id)
        first = await anext(events)  # the server subscribes before it sends the snapshot: nothing is missed
        assert first.type == "status" and first.status == "pending" and first.data["job_id"] == job.job_id
        leased = await daemon.claim()
        await daemon.start(leased)
        await daemon.events(leased, tokens=["Ri", "yadh"], progress=50, logs=["warm"])
        await daemon.result(leased, result={"response": "Riyadh"}, tokens_generated=2)
        async with asyncio.timeout(10):
            rest = [event async for event in events]
    assert [e.type for e in rest] == ["status", "progress", "tokens", "log", "status", "done"]
    assert rest[0].status == "running" and rest[1].progress == 50
    assert "".join(e.text for e in rest) == "Riyadh" and rest[3].data["line"] == "warm"
    assert rest[-1].done and rest[-1].status == "completed"


async def test_the_sync_stream_and_wait_report_events(live, http, admin):
    daemon = TestProvider(http, await online_provider(http))
    renter = await funded_renter(http, admin)
    with dc1.Client(api_key=renter.key, base_url=live.url) as client:
        job = await asyncio.to_thread(client.jobs.submit, "llm", {"prompt": "hi"}, duration_minutes=1)
        seen: list[dc1.Event] = []
        subscribed, loop = asyncio.Event(), asyncio.get_running_loop()

        def on_event(event: dc1.Event) -> None:
            seen.append(event)
            loop.call_soon_threadsafe(subscribed.set)  # the wait is subscribed once it has the snapshot

        waiting = asyncio.create_task(
            asyncio.to_thread(client.jobs.wait, job.job_id, timeout=10, on_event=on_event)
        )
        await asyncio.wait_for(subscribed.wait(), timeout=10)
        await _finish(daemon, result={"response": "Riyadh"})
        output = await waiting
        assert output.text == "Riyadh"
        assert [e.type for e in seen] == ["status", "status", "status", "done"]
        replay = await asyncio.to_thread(lambda: list(client.jobs.stream(job.job_id)))
        assert [(e.type, e.status) for e in replay] == [("status", "completed"), ("done", "completed")]


async def test_waits_end_at_their_deadline(live, http, admin):
    await online_provider(http)
    renter = await funded_renter(http, admin)
    async with _sdk(live, renter.key) as client:
        job = await client.jobs.submit("llm", {"prompt": "hi"}, duration_minutes=1)
        with pytest.raises(dc1.TimeoutError):
            await client.jobs.wait(job.job_id, timeout=0.5)  # ended by the stream's keep-alive
        with pytest.raises(dc1.TimeoutError):
            await client.jobs.wait(job.job_id, timeout=0.2, interval=0.05, stream=False)
        with pytest.raises(dc1.TimeoutError):
            [event async for event in client.jobs.stream(job.job_id, timeout=0.5)]
        with pytest.raises(dc1.NotFoundError):
            [event async for event in client.jobs.stream("job-missing")]


async def test_failures_raise_the_error_tree(live, http, admin):
    await online_provider(http)
    poor = await funded_renter(http, admin, amount=1)
    async with _sdk(live, poor.key) as client:
        with pytest.raises(dc1.InsufficientBalanceError) as short:
            await client.jobs.submit("llm", {"prompt": "hi"}, duration_minutes=1)
        assert short.value.status == 402 and short.value.available_halala == 1
        with pytest.raises(dc1.NotFoundError):
            await client.jobs.get("job-missing")
        with pytest.raises(dc1.ValidationError):
            await client.jobs.submit("llm", {"prompt": "hi", "steps": 3}, duration_minutes=1)
    async with _sdk(live, "dc1-renter-nope") as stranger:
        with pytest.raises(dc1.AuthenticationError):
            await stranger.balance()
    renter = await funded_renter(http, admin)
    async with _sdk(live, renter.key) as client:
        job = await client.jobs.submit("llm", {"prompt": "hi"}, duration_minutes=1)
        await client.jobs.cancel(job.job_id)
        with pytest.raises(dc1.JobFailedError) as failed:
            await client.jobs.wait(job.job_id, timeout=5)
        assert failed.value.refunded_halala == 15 and failed.value.status == 410


async def test_provider_and_admin_methods(live, http, admin):
    provider = await online_provider(http)
    async with _sdk(live, provider.key) as client:
        assert (await client.me())["provider"]["id"] == provider.id
        assert (await client.earnings())["earnings_halala"] == 0
        with pytest.raises(dc1.ValidationError):
            await client.withdrawals.request(1000, "SA0380000000608010167519")
    async with _sdk(live, admin_token=admin["x-admin-token"]) as operator:
        assert (await operator.admin.dashboard())["stats"]["total_providers"] == 1
        assert (await operator.admin.withdrawals.list(status="pending"))["summary"]["pending_count"] == 0
        with pytest.raises(dc1.NotFoundError):
            await operator.admin.withdrawals.approve(999)
    renter = await register_renter(http)
    async with _sdk(live, renter.key) as client:
        with pytest.raises(dc1.AuthenticationError):
            await client.admin.dashboard()


async def test_an_image_result_saves_to_a_file(live, http, admin, tmp_path):
    daemon = TestProvider(http, await online_provider(http))
    renter = await funded_renter(http, admin)
    async with _sdk(live, renter.key) as client:
        job = await client.jobs.submit("image", {"prompt": "a red square"}, duration_minutes=1)
        await _finish(daemon, result={"image_base64": base64.b64encode(PNG).decode(), "format": "png"})
        output = await client.jobs.wait(job.job_id, timeout=10)
    saved = output.save_image(tmp_path / "out.png")
    assert saved == tmp_path / "out.png" and saved.read_bytes() == PNG
    with pytest.raises(ValueError, match="no image"):
        dc1.Output(job.job_id, "completed", True, {"response": "text"}, None, 0).save_image(tmp_path / "x")


async def test_openai_clients_for_a_vllm_serve_endpoint(live, http, admin):
    daemon = TestProvider(http, await online_provider(http))
    renter = await funded_renter(http, admin)
    async with _sdk(live, renter.key) as client:
        job = await client.jobs.submit("vllm_serve", {"model": "gemma3-270m"}, duration_minutes=1)
        waiting = asyncio.create_task(client.jobs.endpoint(job.job_id, timeout=10, interval=0.05))
        leased = await daemon.claim()
        await daemon.start(leased)
        url = endpoint_url(
            live.app.state.settings, job.job_id
        )  # named by the server, whatever the daemon says
        await daemon.events(leased, endpoint_url="https://provider.example/v1")
        assert await waiting == url
        openai_client = await client.jobs.openai_client(job.job_id, timeout=5)
        assert str(openai_client.base_url).rstrip("/") == url and openai_client.api_key == renter.key
        await openai_client.close()
        with dc1.Client(api_key=renter.key, base_url=live.url) as sync_client:
            blocking = await asyncio.to_thread(sync_client.jobs.openai_client, job.job_id, max_retries=0)
        assert str(blocking.base_url).rstrip("/") == url and blocking.max_retries == 0
        blocking.close()
        other = await client.jobs.submit("llm", {"prompt": "hi"}, duration_minutes=1)
        with pytest.raises(ValueError, match="only vllm_serve"):
            await client.jobs.endpoint(other.job_id)
        await client.jobs.cancel(job.job_id)
        with pytest.raises(dc1.JobFailedError):
            await client.jobs.endpoint(job.job_id)
        await client.jobs.cancel(other.job_id)
        unserved = await client.jobs.submit("vllm_serve", {"model": "gemma3-270m"}, duration_minutes=1)
        await _finish(daemon, result={"model": "gemma3-270m"})
        with pytest.raises(ValueError, match="has ended"):
            await client.jobs.endpoint(unserved.job_id, timeout=5, interval=0.05)


def _mock(answer) -> dc1.AsyncClient:
    return dc1.AsyncClient(
        api_key="dc1-renter-x", base_url="http://dcp.test", transport=httpx.MockTransport(answer)
    )


JOB = {"job_id": "job-1", "status": "completed", "job_type": "llm_inference", "cost_halala": 15}
OUTPUT = {"job_id": "job-1", "status": "completed", "result": {"response": "hi"}, "actual_cost_halala": 3}


async def test_async_retries_only_what_the_api_calls_retryable():
    calls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if request.url.path == "/api/renters/balance" and len(calls) < 3:
            error = {"message": "slow", "code": "rate_limit_exceeded", "retry_after_seconds": 0.01}
            return httpx.Response(429, json={"error": error})
        if request.url.path == "/api/renters/balance":
            return httpx.Response(200, json={"balance_halala": 7, "held_halala": 0})
        if request.url.path == "/v1/models":
            return httpx.Response(503, json={"error": {"message": "busy", "code": "no_capacity_available"}})
        return httpx.Response(400, json={"error": "Missing required fields: job_type"})

    async with _mock(answer) as client:
        assert (await client.balance()).balance_halala == 7 and len(calls) == 3
        calls.clear()
        with pytest.raises(dc1.ValidationError):
            await client.jobs.get("job-1")
        assert len(calls) == 1  # a validation error is never retried
        calls.clear()
        client.max_retries = 1
        with pytest.raises(dc1.ProviderUnavailableError) as busy:
            await client.request("GET", "/v1/models")
        assert busy.value.code == "no_capacity_available" and len(calls) == 2


async def test_a_wait_polls_when_the_stream_is_unavailable_or_cut_short(monkeypatch):
    monkeypatch.setattr("dc1._streaming._REOPEN_GIVE_UP_SECONDS", 0.0)  # given up once opened again
    cut_short = "event: status\ndata: {}\n\n"  # a status event, then the connection closes: no ``done``
    answers = [httpx.Response(404, json={"error": "Not Found"})]
    streams = iter(answers + [httpx.Response(200, text=cut_short) for _ in range(4)])

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return next(streams)
        if request.url.path.endswith("/output"):
            return httpx.Response(200, json=OUTPUT)
        return httpx.Response(200, json={"job": JOB})

    async with _mock(answer) as client:
        assert (await client.jobs.wait("job-1")).text == "hi"  # no stream at all
        assert (await client.jobs.wait("job-1")).text == "hi"  # a stream that ended before ``done``
        with pytest.raises(dc1.APIConnectionError, match="closed before"):
            [event async for event in client.jobs.stream("job-1")]


async def test_a_stream_that_ends_early_or_is_refused_while_a_server_restarts_is_opened_again():
    held = 'event: status\ndata: {"status": "running"}\n\n: keep-alive\n\n'  # past its snapshot
    done = 'event: status\ndata: {"status": "running"}\n\nevent: done\ndata: {"status": "completed"}\n\n'
    answers = iter(
        [httpx.Response(200, text=held), httpx.Response(503, json={}), httpx.Response(200, text=done)]
    )
    async with _mock(lambda request: next(answers)) as client:
        events = [event.type async for event in client.jobs.stream("job-1")]
    assert events == ["status", "status", "done"]


async def test_a_stream_near_its_deadline_is_opened_again_to_end_on_time():
    class Slow(httpx.AsyncByteStream):
        async def __aiter__(self):
            yield b"event: status\ndata: {}\n\n"
            await asyncio.sleep(0.7)
            yield b": keep-alive\n\n"  # asked for every 2 s, and only 1.8 s are left
            for _ in range(20):
                await asyncio.sleep(0.3)
                yield b": keep-alive\n\n"

    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.params["heartbeat"])
        return httpx.Response(200, stream=Slow())

    started = time.monotonic()
    async with _mock(answer) as client:
        with pytest.raises(dc1.TimeoutError):
            [event async for event in client.jobs.stream("job-1", timeout=2.5)]
    assert asked == ["2", "1"] and time.monotonic() - started < 4


async def test_unreachable_servers_raise_a_connection_error():
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with _mock(refuse) as client:
        client.max_retries = 0
        with pytest.raises(dc1.APIConnectionError):
            await client.balance()
        with pytest.raises(dc1.APIConnectionError):
            await anext(client.jobs.stream("job-1"))


async def test_the_stream_reads_comments_multiline_and_plain_data():
    body = (
        ": keep-alive\n\n"
        "event: log\ndata: plain\ndata: text\n\n"
        "data: [1, 2]\n\n"
        'event: tokens\ndata: {"text": "hi"}\nid: 7\n\n'
        'event: done\ndata: {"status": "completed"}\n\n'
        "event: never-read\ndata: {}\n\n"
    )
    async with _mock(lambda request: httpx.Response(200, text=body)) as client:
        events = [event async for event in client.jobs.stream("job-1")]
    assert [(e.type, e.data) for e in events] == [
        ("log", {"text": "plain\ntext"}),
        ("message", {"value": [1, 2]}),
        ("tokens", {"text": "hi"}),
        ("done", {"status": "completed"}),
    ]
    assert events[2].text == "hi" and events[0].text == "" and events[-1].status == "completed"


async def test_the_async_client_has_the_surface_of_the_sync_one():
    sync, concurrent = dc1.Client(api_key="dc1-renter-x"), dc1.AsyncClient(api_key="dc1-renter-x")
    pairs = [(sync, concurrent), (sync.admin.withdrawals, concurrent.admin.withdrawals)] + [
        (getattr(sync, n), getattr(concurrent, n)) for n in ("jobs", "providers", "withdrawals", "admin")
    ]
    for blocking, awaiting in pairs:
        names = {name for name in dir(blocking) if not name.startswith("_")} - {"close"}
        assert names == {name for name in dir(awaiting) if not name.startswith("_")} - {"aclose"}
        for name in names:
            if callable(getattr(blocking, name)):
                expected = inspect.signature(getattr(blocking, name)).parameters
                assert inspect.signature(getattr(awaiting, name)).parameters.keys() == expected.keys(), name
    sync.close()
    await concurrent.aclose()
