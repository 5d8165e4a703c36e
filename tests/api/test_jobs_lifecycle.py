"""A job's whole life through HTTP with an in-test provider: claim, start, events, result, output, money.
And each failure: a stale or foreign lease, a vanished provider, retries spent, timeouts, cancels."""

from __future__ import annotations

import asyncio
import threading

import pytest

from dcp.jobs import lifecycle, repository
from dcp.jobs.api import job_event_stream
from dcp.jobs.events import EventHub
from dcp.jobs.sweeper import run_forever, sweep_once
from tests.support.factories import funded_renter, llm_job, online_provider, submit
from tests.support.provider_client import TestProvider


async def _sweep(client, clock):
    app = client._transport.app
    return await sweep_once(app.state.db, settings=app.state.settings, now=clock.now(), hub=app.state.hub)


async def _job(client, renter, job_id):
    return (await client.get(f"/api/jobs/{job_id}", headers=renter.renter_headers)).json()["job"]


async def _money(client, renter, provider):
    balance = (await client.get("/api/renters/balance", headers=renter.renter_headers)).json()
    earnings = (await client.get("/api/providers/earnings", headers=provider.provider_headers)).json()
    return balance["balance_halala"], balance["held_halala"], earnings["earnings_halala"]


@pytest.fixture
async def market(client, admin):
    provider = await online_provider(client)
    renter = await funded_renter(client, admin, amount=1000)
    return renter, provider, TestProvider(client, provider)


class TestHappyPath:
    async def test_llm_job_from_submit_to_settled_output(self, client, clock, market):
        renter, provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        pending = await client.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)
        assert pending.status_code == 202 and pending.json()["status"] == "pending"
        leased = await daemon.claim()
        assert leased.job_id == job["job_id"] and leased.spec["params"]["max_tokens"] == 32
        assert (await _job(client, renter, job["job_id"]))["status"] == "assigned"
        assert (await daemon.start(leased)).json()["status"] == "running"
        mine = (await client.get("/api/providers/me", headers=provider.provider_headers)).json()
        assert [j["job_id"] for j in mine["active_jobs"]] == [j["job_id"] for j in mine["recent_jobs"]]
        assert mine["active_jobs"][0]["job_id"] == job["job_id"]
        clock.advance(seconds=10)
        progress = await daemon.events(leased, progress=40, tokens=["Riy", "adh"], logs=["loaded model"])
        assert progress.status_code == 200
        clock.advance(seconds=20)
        done = await daemon.result(
            leased, result={"response": "Riyadh"}, tokens_generated=10_000, execution_time_ms=30_000
        )
        assert done.status_code == 200 and done.json()["status"] == "completed"
        output = await client.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)
        assert output.status_code == 200
        body = output.json()
        assert (
            body["type"] == "text" and body["result"]["response"] == "Riyadh" and body["response"] == "Riyadh"
        )
        assert body["tokens_generated"] == 32  # capped at max_tokens: a provider cannot inflate usage
        assert body["result"]["tokens_generated"] == 32  # where the seed's pipeline reads it
        mine = (await client.get("/api/providers/me", headers=provider.provider_headers)).json()
        assert mine["active_jobs"] == [] and mine["recent_jobs"][0]["status"] == "completed"
        # 30 s at 15 halala/minute = 7.5 → 8 halala, billed per second and rounded up; the rest returns.
        assert body["billing"] == {"quoted_halala": 45, "actual_cost_halala": 8, "refunded_halala": 37}
        assert body["actual_cost_halala"] == 8
        assert await _money(client, renter, provider) == (992, 0, 6)  # provider gets floor(75%)

    async def test_a_run_of_under_a_second_is_billed_a_second_not_nothing(self, client, clock, market):
        renter, _provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        leased = await daemon.claim()
        await daemon.start(leased)
        clock.advance(seconds=0.8)  # a short answer from a warm engine
        await daemon.result(leased, result={"response": "Riyadh"})
        output = await client.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)
        assert output.json()["billing"]["actual_cost_halala"] == 1  # 1 s at 15 halala/minute, rounded up

    async def test_provider_cannot_inflate_its_run_time(self, client, clock, market):
        renter, _provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        leased = await daemon.claim()
        await daemon.start(leased)
        clock.advance(seconds=12)
        await daemon.result(leased, result={"response": "x"}, execution_time_ms=999_999_999)
        output = (await client.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)).json()
        assert output["billing"]["actual_cost_halala"] == 3  # 12 s measured by the server

    async def test_reported_failure_is_refunded(self, client, clock, market):
        renter, provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        leased = await daemon.claim()
        await daemon.start(leased)
        clock.advance(seconds=5)
        await daemon.result(leased, status="failed", error="CUDA out of memory")
        gone = await client.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)
        assert gone.status_code == 410
        assert (
            gone.json()["error"] == "CUDA out of memory" and gone.json()["billing"]["refunded_halala"] == 45
        )
        assert await _money(client, renter, provider) == (1000, 0, 0)

    async def test_a_failure_of_the_job_s_own_program_is_billed_for_its_run(self, client, clock, market):
        # Its script exited non-zero, or ran out its time: a renter cannot run free by failing at the end.
        renter, provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        leased = await daemon.claim()
        await daemon.start(leased)
        clock.advance(seconds=12)
        await daemon.result(leased, status="failed", error="The script exited with code 3: 42", cause="job")
        gone = await client.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)
        assert gone.status_code == 410 and gone.json()["error"] == "The script exited with code 3: 42"
        billing = gone.json()["billing"]
        assert (billing["actual_cost_halala"], billing["refunded_halala"]) == (3, 42)  # 12 s at 15 a minute
        assert await _money(client, renter, provider) == (1000 - 3, 0, 2)  # the provider's 75%, rounded down

    async def test_a_job_its_daemon_was_cut_off_from_goes_back_to_the_queue(self, client, clock, market):
        # The daemon stopped or restarted while the job ran: it runs again (here on the same provider, back
        # from its restart), unpaid for the run that was cut off, until its retries are spent.
        renter, provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        for attempt in range(2):
            leased = await daemon.claim()
            assert leased.job_id == job["job_id"], attempt
            await daemon.start(leased)
            clock.advance(seconds=5)
            cut = await daemon.result(leased, status="failed", error="restarted", cause="interrupted")
            assert cut.json()["status"] == "pending"
            assert await _money(client, renter, provider) == (955, 45, 0)  # still held, nothing paid
        leased = await daemon.claim()
        await daemon.start(leased)
        cut = await daemon.result(leased, status="failed", error="restarted", cause="interrupted")
        assert cut.json()["status"] == "failed"  # the retry budget is spent: refunded
        assert await _money(client, renter, provider) == (1000, 0, 0)

    async def test_a_result_the_output_could_not_show_is_refused(self, client, clock, market):
        renter, _provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        leased = await daemon.claim()
        await daemon.start(leased)
        for result in ({"response": {"text": "Riyadh"}}, {"model": 7}, {"width": "512"}, {"height": 1.5}):
            refused = await daemon.result(leased, result=result)
            assert refused.status_code == 400, result
            assert f"result.{next(iter(result))} must be" in refused.json()["error"]
        assert (await _job(client, renter, job["job_id"]))["status"] == "running"  # nothing changed
        clock.advance(seconds=4)
        done = await daemon.result(leased, result={"response": "Riyadh", "usage": {"n": 1}})
        assert done.status_code == 200
        output = await client.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)
        assert output.status_code == 200 and output.json()["response"] == "Riyadh"

    async def test_signed_spec_and_idle_poll(self, client, market):
        renter, provider, daemon = market
        assert await daemon.claim() is None  # nothing to do: 204
        await submit(client, renter, llm_job())
        leased = await daemon.claim()
        assert leased.spec["protocol"] == "dcp-task/1" and leased.spec["provider_id"] == provider.id
        assert await daemon.claim() is None  # one slot: the second job waits


class TestLeases:
    async def test_stale_and_foreign_leases_change_nothing(self, client, clock, market):
        renter, provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        leased = await daemon.claim()
        intruder = TestProvider(client, await online_provider(client))
        forged = type(leased)(leased.job_id, leased.lease_token, {})
        assert (await intruder.result(forged, result={"response": "mine"})).status_code == 404
        wrong = type(leased)(leased.job_id, "not-the-token", {})
        assert (await daemon.result(wrong, result={"response": "x"})).status_code == 409
        assert (await _job(client, renter, job["job_id"]))["status"] == "assigned"
        assert await _money(client, renter, provider) == (955, 45, 0)

    async def test_vanished_provider_job_moves_to_another(self, client, admin, clock, market):
        renter, provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        leased = await daemon.claim()
        await daemon.start(leased)
        other = TestProvider(client, await online_provider(client))
        clock.advance(seconds=61)
        await client.post("/api/providers/heartbeat", headers=other.headers, json={})
        report = await _sweep(client, clock)
        assert report.changed == {job["job_id"]: "pending"}
        state = await _job(client, renter, job["job_id"])
        assert state["status"] == "pending" and state["attempts"] == 1
        assert (await daemon.result(leased, result={"response": "late"})).status_code == 409
        second = await other.claim()
        assert second.job_id == job["job_id"] and second.lease_token != leased.lease_token
        await other.start(second)
        clock.advance(seconds=6)
        assert (await other.result(second, result={"response": "ok"})).status_code == 200
        output = (await client.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)).json()
        assert output["billing"]["actual_cost_halala"] == 2  # only the run that finished is paid
        me = (await client.get("/api/providers/me", headers=provider.provider_headers)).json()
        assert me["provider"]["earnings_halala"] == 0

    async def test_retries_exhausted_refunds(self, client, clock, market):
        renter, _provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        for attempt in range(3):
            await client.post("/api/providers/heartbeat", headers=daemon.headers, json={})
            leased = await daemon.claim() if attempt == 0 else None
            if leased is None:  # after a loss the job avoids the provider that lost it: use fresh ones
                fresh = TestProvider(client, await online_provider(client))
                leased = await fresh.claim()
            assert leased.job_id == job["job_id"]
            clock.advance(seconds=61)
            await _sweep(client, clock)
        state = await _job(client, renter, job["job_id"])
        assert state["status"] == "failed" and "retry budget" in state["error"]
        assert state["refunded_halala"] == 45
        assert (await client.get("/api/renters/balance", headers=renter.renter_headers)).json()[
            "balance_halala"
        ] == 1000

    async def test_running_past_max_duration_is_stopped_and_billed_for_the_limit(self, client, clock, market):
        renter, _provider, daemon = market
        job = (await submit(client, renter, llm_job(duration_minutes=2, max_duration_seconds=60))).json()[
            "job"
        ]
        leased = await daemon.claim()
        await daemon.start(leased)
        for _ in range(3):  # the daemon keeps its lease alive, but the job overruns
            clock.advance(seconds=30)
            await daemon.events(leased, progress=50)
        clock.advance(seconds=1)
        await client.post("/api/providers/heartbeat", headers=daemon.headers, json={})
        report = await _sweep(client, clock)
        assert report.changed == {job["job_id"]: "failed"}
        state = await _job(client, renter, job["job_id"])
        assert state["actual_cost_halala"] == 15 and state["refunded_halala"] == 15  # 60 s of a 2-minute hold
        late = await daemon.result(leased, result={"response": "too late"})  # told the outcome only
        assert late.status_code == 200 and late.json()["status"] == "failed"
        assert (await _job(client, renter, job["job_id"]))["actual_cost_halala"] == 15

    async def test_nobody_takes_it_before_the_queue_deadline(self, client, clock, market):
        renter, provider, _ = market
        job = (await submit(client, renter, llm_job(provider_id=provider.id))).json()["job"]
        clock.advance(seconds=901)
        await _sweep(client, clock)
        state = await _job(client, renter, job["job_id"])
        assert state["status"] == "failed" and state["refunded_halala"] == 45

    async def test_paused_provider_loses_its_placed_jobs(self, client, clock, market):
        renter, provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        assert job["provider_id"] == provider.id
        await client.post("/api/providers/pause", headers=daemon.headers)
        other = TestProvider(client, await online_provider(client))
        report = await _sweep(client, clock)
        assert report.moved == 1
        assert await daemon.claim() is None  # paused: gets nothing
        assert (await other.claim()).job_id == job["job_id"]


async def test_job_signals_are_given_in_the_event_loop(client, market, monkeypatch):
    """Live events and provider wake-ups touch asyncio queues and events: never from a worker thread."""
    renter, _, daemon = market
    threads = []

    def recorded(original):
        def record(self, *args, **kwargs):
            threads.append(threading.current_thread())
            return original(self, *args, **kwargs)

        return record

    for name in ("publish", "nudge"):
        monkeypatch.setattr(EventHub, name, recorded(getattr(EventHub, name)))
    job = (await submit(client, renter, llm_job())).json()["job"]
    await daemon.start(await daemon.claim())
    await client.post(f"/api/jobs/{job['job_id']}/cancel", headers=renter.renter_headers)
    assert len(threads) >= 4  # submit's nudge, start's event, cancel's event and nudge
    assert set(threads) == {threading.main_thread()}


async def test_work_finished_while_the_servers_were_down_is_delivered_not_redone(client, clock, market):
    # The servers were away for longer than a lease; the daemon finished its job meanwhile. A restarted
    # server waits a lease before it takes leases for having run out, and a lease past its expiry holds until
    # then: the daemon, reconnecting, delivers its result once.
    renter, _provider, daemon = market
    job = (await submit(client, renter, llm_job(max_duration_seconds=60))).json()["job"]  # past, after
    leased = await daemon.claim()
    await daemon.start(leased)
    app = client._transport.app
    settings = app.state.settings
    settings.jobs.sweep_interval_seconds = 0.01
    clock.advance(seconds=settings.jobs.lease_seconds + 30)  # the outage
    stop = asyncio.Event()
    restarted = asyncio.create_task(
        run_forever(app.state.db, settings=settings, clock=clock.now, hub=app.state.hub, stop=stop)
    )
    try:
        await asyncio.sleep(0.2)  # sweeps, one after another
        assert (await _job(client, renter, job["job_id"]))["status"] == "running"
        done = await daemon.result(leased, result={"response": "Riyadh"})
        assert done.status_code == 200 and done.json()["status"] == "completed"
        second = (await submit(client, renter, llm_job())).json()["job"]
        await daemon.start(await daemon.claim())
        clock.advance(seconds=settings.jobs.lease_seconds + 1)  # its daemon went quiet, past the grace too
        await asyncio.sleep(0.2)
        assert (await _job(client, renter, second["job_id"]))["status"] == "pending"  # taken back
    finally:
        stop.set()
        await restarted
    output = (await client.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)).json()
    assert output["response"] == "Riyadh" and output["billing"]["actual_cost_halala"] == 15  # its limit


async def test_a_stream_whose_credential_check_fails_a_moment_goes_on(client, market):
    renter, _provider, _daemon = market
    job = (await submit(client, renter, llm_job())).json()["job"]
    app = client._transport.app

    async def database_away() -> bool:
        raise ConnectionError("the database is away")

    hub, db = app.state.hub, app.state.db
    stream = job_event_stream(db, hub, job["job_id"], keepalive=1, still_allowed=database_away)
    assert (await anext(stream)).startswith("event: status")
    for _ in range(2):  # keep-alives, each after a check that could not be made
        assert await asyncio.wait_for(anext(stream), timeout=5) == ": keep-alive\n\n"
    await stream.aclose()


async def test_a_follower_that_fell_behind_still_gets_the_end(client, clock, market):
    renter, _provider, daemon = market
    job = (await submit(client, renter, llm_job())).json()["job"]
    leased = await daemon.claim()
    await daemon.start(leased)
    app = client._transport.app
    stream = job_event_stream(
        app.state.db, app.state.hub, job["job_id"], keepalive=60, still_allowed=lambda: asyncio.sleep(0, True)
    )
    assert (await anext(stream)).startswith("event: status")  # following; then it reads nothing for a while
    for _ in range(5):  # 1,280 log lines: more than a follower's queue keeps
        await daemon.events(leased, logs=["a line"] * 256)
    clock.advance(seconds=5)
    await daemon.result(leased, result={"response": "Riyadh"})
    rest = await asyncio.wait_for(_all(stream), timeout=10)
    assert rest[-1] == 'event: done\ndata: {"status": "completed"}\n\n'
    assert rest[-2].startswith("event: status") and '"status": "completed"' in rest[-2]


async def _all(stream) -> list[str]:
    return [chunk async for chunk in stream]


class TestCancel:
    async def test_pending_and_assigned_are_refunded(self, client, market):
        renter, provider, daemon = market
        pending = (await submit(client, renter, llm_job(provider_id=provider.id))).json()["job"]
        queued = (await submit(client, renter, llm_job(provider_id=provider.id))).json()["job"]
        leased = await daemon.claim()
        assert leased.job_id == pending["job_id"]
        for job in (queued, pending):
            answer = await client.post(f"/api/jobs/{job['job_id']}/cancel", headers=renter.renter_headers)
            assert answer.status_code == 200 and answer.json()["job"]["status"] == "cancelled"
            assert answer.json()["job"]["refunded_halala"] == 45
        assert await _money(client, renter, provider) == (1000, 0, 0)
        late = await daemon.result(leased, result={"response": "x"})
        assert late.json()["status"] == "cancelled"
        assert await _money(client, renter, provider) == (1000, 0, 0)
        assert (await daemon.events(leased, progress=5)).status_code == 409

    async def test_running_is_billed_for_the_time_it_ran(self, client, clock, market):
        renter, provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        leased = await daemon.claim()
        await daemon.start(leased)
        clock.advance(seconds=40)
        answer = await client.post(f"/api/dc1/jobs/{job['job_id']}/cancel", headers=renter.renter_headers)
        assert answer.json()["job"]["actual_cost_halala"] == 10
        assert await _money(client, renter, provider) == (990, 0, 7)
        again = await client.post(f"/api/jobs/{job['job_id']}/cancel", headers=renter.renter_headers)
        assert again.status_code == 409
        gone = await client.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)
        assert gone.status_code == 410 and gone.json()["status"] == "cancelled"

    async def test_a_start_that_came_after_the_cancel_read_the_job_is_billed(self, client, clock, market):
        renter, provider, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        leased = await daemon.claim()
        db, settings = client._transport.app.state.db, client._transport.app.state.settings
        async with db.reader() as session:
            read = await repository.by_job_id(session, job["job_id"])  # assigned, not started
        await daemon.start(leased)  # committed between the cancel's read and its write
        clock.advance(seconds=20)
        async with db.writer() as session:
            stale = await session.merge(read, load=False)
            assert await lifecycle.cancel(session, stale, now=clock.now(), settings=settings)
            await session.commit()
        ended = await _job(client, renter, job["job_id"])
        assert ended["status"] == "cancelled" and ended["actual_cost_halala"] == 5  # 20 s it ran
        assert await _money(client, renter, provider) == (995, 0, 3)

    async def test_completed_cannot_be_cancelled(self, client, market):
        renter, _, daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        leased = await daemon.claim()
        await daemon.result(leased, result={"response": "x"})
        answer = await client.post(f"/api/jobs/{job['job_id']}/cancel", headers=renter.renter_headers)
        assert answer.status_code == 409


class TestVisibility:
    async def test_only_owner_runner_and_admin_see_a_job(self, client, admin, market):
        renter, provider, _daemon = market
        job = (await submit(client, renter, llm_job())).json()["job"]
        stranger = await funded_renter(client, admin)
        other_provider = await online_provider(client)
        url = f"/api/jobs/{job['job_id']}"
        assert (await client.get(url, headers=renter.renter_headers)).status_code == 200
        assert (await client.get(url, headers=provider.provider_headers)).status_code == 200
        assert (await client.get(url, headers=admin)).status_code == 200
        assert (await client.get(url, headers=stranger.renter_headers)).status_code == 404
        assert (await client.get(url, headers=other_provider.provider_headers)).status_code == 404
        assert (await client.post(f"{url}/cancel", headers=stranger.renter_headers)).status_code == 404
        assert (await client.get("/api/jobs/job-nope", headers=renter.renter_headers)).status_code == 404
        assert (await client.get(url)).status_code == 401
        for malformed in ({"x-renter-key": "not-a-key"}, {"authorization": "Bearer not-the-admin-token"}):
            answer = await client.get(url, headers=malformed)  # an invalid key, not "needs the admin token"
            assert answer.status_code == 401 and "Invalid" in answer.json()["error"], malformed

    async def test_history_pages_and_filters(self, client, market):
        renter, provider, daemon = market
        for _ in range(3):
            await submit(client, renter, llm_job(provider_id=provider.id))
        await submit(
            client,
            renter,
            {
                "job_type": "image_gen",
                "duration_minutes": 1,
                "provider_id": provider.id,
                "params": {"prompt": "a falcon", "steps": 4},
            },
        )
        leased = await daemon.claim()
        await daemon.result(leased, result={"response": "x"})
        everything = (await client.get("/api/jobs/history", headers=renter.renter_headers)).json()
        assert everything["total"] == 4
        images = await client.get(
            "/api/jobs/history", headers=renter.renter_headers, params={"job_type": "image_generation"}
        )
        assert images.json()["total"] == 1
        done = await client.get(
            "/api/jobs/history", headers=renter.renter_headers, params={"status": "completed"}
        )
        assert done.json()["total"] == 1
        page = await client.get(
            "/api/jobs/history", headers=renter.renter_headers, params={"limit": 2, "offset": 2}
        )
        assert len(page.json()["jobs"]) == 2
        mine = (await client.get("/api/providers/jobs", headers=provider.provider_headers)).json()
        assert mine["total"] == 4

    async def test_a_cursor_pages_through_jobs_that_change_meanwhile(self, client, market):
        renter, provider, _ = market
        submitted = [await submit(client, renter, llm_job(provider_id=provider.id)) for _ in range(5)]
        jobs = [answer.json()["job"]["job_id"] for answer in submitted]
        headers, pending = renter.renter_headers, {"status": "pending", "limit": 2}
        page = (await client.get("/api/jobs/history", headers=headers, params=pending)).json()
        seen = [job["job_id"] for job in page["jobs"]]
        while page["next_before"] is not None:
            for job_id in seen[-2:]:  # each job seen is cancelled, so it leaves the pending ones
                assert (await client.post(f"/api/jobs/{job_id}/cancel", headers=headers)).status_code == 200
            params = {**pending, "before": page["next_before"]}
            page = (await client.get("/api/jobs/history", headers=headers, params=params)).json()
            seen += [job["job_id"] for job in page["jobs"]]
        assert seen == jobs[::-1]  # with offsets, every other page was skipped
        answer = await client.get("/api/providers/jobs", headers=provider.provider_headers)
        last = answer.json()["jobs"][-1]["job_id"]
        mine = await client.get(
            "/api/providers/jobs", headers=provider.provider_headers, params={"before": last}
        )
        assert mine.status_code == 200 and mine.json()["jobs"] == []
        for params in ({"before": "job-nope"}, {"before": "a\x00"}):
            answer = await client.get("/api/jobs/history", headers=headers, params=params)
            assert answer.status_code == 400 and "before" in answer.json()["error"]
