"""The daemon's runner refuses task specs that are forged, tampered with, expired or of another protocol, and
delivers what a restart left behind."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from dcp.agent.config import AgentConfig
from dcp.agent.daemon import Daemon
from dcp.agent.link import ServerClient
from dcp.agent.runner import JobEvents, Runner
from dcp.agent.runtimes.serve import PoolEngine
from dcp.agent.state import JobStore
from dcp.kit.signing import sign, signing_key_for
from tests.support.polling import until

KEY = "dc1-provider-example"


def _spec(**overrides):
    expires = (datetime.now(UTC) + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    return {
        "protocol": "dcp-task/1",
        "job_id": "job-1",
        "provider_id": 1,
        "job_type": "llm_inference",
        "params": {"prompt": "hi"},
        "lease_token": "lease",
        "expires_at": expires,
        **overrides,
    }


@pytest.fixture
def runner(tmp_path):
    return Runner(
        client=None, runtimes={}, store=JobStore(tmp_path), signing_key=signing_key_for(KEY), slots=1
    )


def test_a_genuine_spec_passes(runner):
    spec = _spec()
    assert runner.check(spec, sign(spec, signing_key_for(KEY))) is None


def test_a_spec_signed_with_another_providers_key_is_refused(runner):
    spec = _spec()
    assert "signature" in runner.check(spec, sign(spec, signing_key_for("dc1-provider-other")))


def test_a_tampered_spec_is_refused(runner):
    spec = _spec()
    signature = sign(spec, signing_key_for(KEY))
    spec["params"] = {"prompt": "something else"}
    assert "signature" in runner.check(spec, signature)


def test_an_expired_spec_is_refused(runner):
    spec = _spec(expires_at="2020-01-01T00:00:00.000Z")
    assert "expired" in runner.check(spec, sign(spec, signing_key_for(KEY)))


def test_an_unknown_protocol_is_refused(runner):
    spec = _spec(protocol="dcp-task/9")
    assert "protocol" in runner.check(spec, sign(spec, signing_key_for(KEY)))


async def test_a_refused_spec_never_runs(runner):
    spec = _spec()
    await runner.accept({"spec": spec, "signature": "0" * 64})
    assert runner.running == {} and runner.store.all() == []


async def test_a_result_the_server_never_took_stays_on_disk_until_it_does(tmp_path, monkeypatch):
    monkeypatch.setattr("dcp.agent.link.backoff", lambda failures: 0)
    store = JobStore(tmp_path)
    report = {"lease_token": "lease", "status": "completed", "result": {"response": "Riyadh"}}
    store.save("job-1", {"spec": _spec(), "state": "reporting", "report": report})

    def away(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def back(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "completed"})

    for answer, kept in ((away, 1), (back, 0)):  # a restart while the server is away, then one after
        client = ServerClient("http://dcp.test", KEY, transport=httpx.MockTransport(answer))
        runner = Runner(client=client, runtimes={}, store=store, signing_key=signing_key_for(KEY), slots=1)
        await runner.recovery()
        await client.close()
        assert len(store.all()) == kept  # it was deleted after 20 tries: a completed job's result lost


def _restarted(tmp_path) -> tuple[Runner, list[dict]]:
    """A runner after a restart that cut a job off while it ran, and the reports its server receives."""
    store = JobStore(tmp_path)
    store.save("job-1", {"spec": _spec(), "state": "running"})  # the daemon died while it ran
    reports: list[dict] = []

    def server(request: httpx.Request) -> httpx.Response:
        reports.append(json.loads(request.content))
        return httpx.Response(200, json={"status": "pending"})

    client = ServerClient("http://dcp.test", KEY, transport=httpx.MockTransport(server))
    return Runner(client=client, runtimes={}, store=store, signing_key=signing_key_for(KEY), slots=1), reports


async def test_a_job_a_restart_cut_off_is_given_back_to_run_again(tmp_path):
    runner, reports = _restarted(tmp_path)
    await runner.recovery()
    await runner.client.close()
    assert [(r["status"], r["cause"]) for r in reports] == [("failed", "interrupted")]  # requeued
    assert runner.store.all() == []


async def test_a_job_sent_again_and_running_is_not_reported_as_cut_off(tmp_path):
    runner, reports = _restarted(tmp_path)
    recovering = runner.recovery()  # what the restart left, read first
    runner.running["job-1"] = JobEvents(runner.client, "job-1", "lease")  # then the link sent it again
    await recovering
    await runner.client.close()
    assert reports == []  # not given back while it runs here: its own run reports


async def test_a_restarted_daemon_heartbeats_while_it_retries_a_pending_result(tmp_path, monkeypatch):
    monkeypatch.setattr("dcp.agent.link.backoff", lambda failures: 0.01)
    config = AgentConfig(server="http://dcp.test", key=KEY, home=tmp_path, status_port=0, release_key="")
    beat = asyncio.Event()

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/heartbeat"):
            beat.set()
            return httpx.Response(200, json={})
        # Refused until the provider shows up online: before, the daemon retried its results (20 times)
        # before its first heartbeat, so it stayed offline, and this result was never delivered.
        return httpx.Response(200 if beat.is_set() else 503, json={"status": "completed"})

    daemon = Daemon(config, runtimes={}, transport=httpx.MockTransport(server))
    report = {"lease_token": "lease", "status": "completed", "result": {"response": "Riyadh"}}
    daemon.runner.store.save("job-1", {"spec": _spec(), "state": "reporting", "report": report})
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))

    async def delivered() -> bool:
        return not daemon.runner.store.all()

    await until(delivered, within=10, what="the pending result's delivery")
    stop.set()
    assert await running == 0


async def test_a_daemon_says_at_once_when_its_v1_pool_engine_is_ready(tmp_path):
    config = AgentConfig(
        server="http://dcp.test", key=KEY, home=tmp_path, status_port=0, release_key="", heartbeat_seconds=60
    )
    beats: list[dict] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/heartbeat"):
            beats.append(json.loads(request.content))
        return httpx.Response(200, json={})

    class Engine(PoolEngine):
        ready = asyncio.Event()

        async def start(self) -> None:
            await self.ready.wait()

        def status(self) -> dict:
            return {"ready": self.ready.is_set()}

    daemon = Daemon(config, runtimes={}, transport=httpx.MockTransport(server))
    daemon.pool = Engine(daemon.llama, concurrency=1, context=2048)
    stop = asyncio.Event()
    running = asyncio.create_task(daemon.run(stop))

    async def beats_say_ready() -> bool:
        return any(beat.get("serving", {}).get("ready") for beat in beats)

    await until(lambda: asyncio.sleep(0, bool(beats)), what="the first heartbeat")
    assert beats[0]["serving"] == {"ready": False}
    Engine.ready.set()  # the engine serves 59 s before the next beat is due: the server hears it now
    await until(beats_say_ready, what="a heartbeat saying the pool serves")
    stop.set()
    assert await running == 0


async def test_a_daemon_whose_loop_broke_exits_to_be_started_again(tmp_path, caplog):
    config = AgentConfig(server="http://dcp.test", key=KEY, home=tmp_path, status_port=0, release_key="")
    answering = httpx.MockTransport(lambda request: httpx.Response(200, json={}))
    daemon = Daemon(config, runtimes={}, transport=answering)

    async def broken() -> None:
        raise RuntimeError("a bug in the link")

    daemon.link.run = broken  # type: ignore[method-assign]
    assert await asyncio.wait_for(daemon.run(asyncio.Event()), timeout=10) == 1  # not a daemon that limps on
    assert "a loop of the daemon ended" in caplog.text and "a bug in the link" in caplog.text


async def test_a_flood_of_output_lines_keeps_the_daemon_s_memory_bounded_and_a_failed_post_loses_none():
    posted: list[list[str]] = []
    down = True

    def server(request: httpx.Request) -> httpx.Response:
        if down:
            return httpx.Response(503)
        posted.append(json.loads(request.content).get("logs", []))
        return httpx.Response(200, json={})

    client = ServerClient("http://dcp.test", KEY, transport=httpx.MockTransport(server))
    events = JobEvents(client, "job-1", "lease")
    for n in range(100_000):  # a script printing far faster than batches go (9 MB took 215 MB before)
        events.log(f"line {n}")
    await events.flush()  # the server is away: the batch is kept for the next
    down = False
    while not posted or posted[-1]:
        await events.flush()
    lines = [line for batch in posted for line in batch]
    assert lines[:2] == ["line 0", "line 1"] and len(lines) < 5_000
    assert lines[-1] == f"[{100_000 - len(lines) + 1} lines not shown live: printed faster than sent]"
    await client.close()


async def test_a_batch_the_server_refuses_is_not_sent_again_and_long_lines_fit_the_body_limit():
    posted: list[bytes] = []
    refuse = True

    def server(request: httpx.Request) -> httpx.Response:
        nonlocal refuse
        posted.append(request.content)
        if refuse:  # a refusal of this batch, not an outage: sent again, it would block every renewal
            refuse = False
            return httpx.Response(413, json={"error": "Request body too large"})
        return httpx.Response(200, json={})

    client = ServerClient("http://dcp.test", KEY, transport=httpx.MockTransport(server))
    events = JobEvents(client, "job-1", "lease")
    for n in range(600):
        events.log(f"{n:03d}" + "\u0661" * 4093)  # 4,096 characters, most sent as 6-byte escapes
    for _ in range(3):
        await events.flush()
    assert all(len(body) < 1024 * 1024 for body in posted)  # what the server's body limit takes
    first = [json.loads(body)["logs"] for body in posted]
    assert first[0][0].startswith("000") and not first[1][0].startswith("000")  # refused: not sent again
    await client.close()
