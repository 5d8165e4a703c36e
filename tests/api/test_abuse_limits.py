"""Abuse limits: per-IP buckets on registering and signing in, per-key and per-IP buckets on every other
route, 429 with Retry-After, shared between replicas through Redis, memory that stays bounded, and
slow bodies cut off."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx

from dcp.app import create_app
from dcp.config import Settings
from dcp.db.engine import Database
from dcp.kit.clock import ManualClock
from dcp.kit.limits import LocalBuckets, RedisBuckets
from tests.support.factories import register_renter
from tests.support.redis_server import running_redis

_ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def _too_many(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    seconds = response.json()["retry_after_seconds"]
    assert seconds >= 1 and response.headers["retry-after"] == str(seconds)


class TestSignUps:
    async def test_an_address_registers_a_few_accounts_then_waits(
        self, client: httpx.AsyncClient, settings: Settings, admin: dict[str, str]
    ) -> None:
        settings.limits.signups_per_hour_per_ip = 2
        await register_renter(client, name="a", email="a@example.com")
        await register_renter(client, name="b", email="b@example.com")
        third = await client.post("/api/dc1/providers/register", json={"name": "c", "email": "c@example.com"})
        _too_many(third)
        renters = await client.get("/api/admin/renters", headers=admin)
        providers = await client.get("/api/admin/providers", headers=admin)
        assert renters.json()["total"] == 2 and providers.json()["total"] == 0

    async def test_the_sign_in_page_slows_down_guessing(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        settings.limits.sign_ins_per_minute_per_ip = 2
        form = await client.get("/signin")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token
        for _ in range(2):
            guess = await client.post(
                "/signin", data={"csrf": token.group(1), "key": "dc1-renter-" + "g" * 40}
            )
            assert guess.status_code == 401
        _too_many(
            await client.post("/signin", data={"csrf": token.group(1), "key": "dc1-renter-" + "h" * 40})
        )


class TestPerKey:
    async def test_each_key_has_its_own_bucket(self, client: httpx.AsyncClient, settings: Settings) -> None:
        first = await register_renter(client, name="a", email="a@example.com")
        second = await register_renter(client, name="b", email="b@example.com")
        settings.limits.requests_per_minute_per_key = 3
        for _ in range(3):
            assert (await client.get("/api/renters/me", headers=first.renter_headers)).status_code == 200
        _too_many(await client.get("/api/renters/balance", headers=first.renter_headers))
        assert (await client.get("/api/renters/me", headers=second.renter_headers)).status_code == 200

    async def test_a_key_in_the_query_has_one_bucket_whatever_else_the_query_holds(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        renter = await register_renter(client)
        settings.limits.requests_per_minute_per_key = 3
        for n in range(3):
            answer = await client.get("/api/renters/me", params={"key": renter.key, "n": n})
            assert answer.status_code == 200
        _too_many(await client.get("/api/renters/me", params={"key": renter.key, "n": 9}))

    async def test_made_up_credentials_run_into_the_address_s_limit(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        # Each made-up key would otherwise get a bucket of its own: guessing, or flooding, without limit.
        settings.limits.requests_per_minute_per_ip = 3
        answers = [
            await client.get("/api/admin/renters", headers={"x-admin-token": f"guess-{n}"}) for n in range(6)
        ]
        assert [answer.status_code for answer in answers] == [401, 401, 401, 401, 429, 429]
        _too_many(answers[-1])

    async def test_a_valid_key_keeps_its_own_bucket_after_a_refusal_at_its_address(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        renter = await register_renter(client)
        assert (await client.get("/api/renters/me", headers=renter.renter_headers)).status_code == 200
        settings.limits.requests_per_minute_per_ip = 2
        stranger = await client.get("/api/renters/me", headers={"x-renter-key": "dc1-renter-" + "x" * 40})
        assert stranger.status_code == 401  # someone else behind the same address
        for _ in range(5):  # past the address's 2: the key was accepted lately, its own bucket applies
            assert (await client.get("/api/renters/me", headers=renter.renter_headers)).status_code == 200

    async def test_callers_without_a_key_share_their_address_bucket(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        settings.limits.requests_per_minute_per_ip = 2
        for _ in range(2):
            assert (await client.get("/api/renters/available-providers")).status_code == 200
        _too_many(await client.get("/api/renters/available-providers"))

    async def test_a_browser_asking_for_a_page_gets_a_page_in_its_language(
        self, client: httpx.AsyncClient, settings: Settings
    ) -> None:
        settings.limits.requests_per_minute_per_ip = 1
        browser = {"accept": "text/html,application/xhtml+xml", "cookie": "dcp_lang=ar"}
        assert (await client.get("/", headers=browser)).status_code == 200
        page = await client.get("/", headers=browser)
        assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
        seconds = int(page.headers["retry-after"])
        assert seconds >= 1 and 'dir="rtl"' in page.text
        assert "طلبات كثيرة جدًا" in page.text and str(seconds).translate(_ARABIC) in page.text
        _too_many(await client.get("/api/renters/available-providers", headers=browser))  # the API keeps JSON


async def test_replicas_share_buckets_through_redis(
    settings: Settings, database: Database, clock: ManualClock
) -> None:
    with running_redis() as url:
        settings.redis_url = url
        settings.limits.requests_per_minute_per_ip = 3
        replicas = [create_app(settings, db=database, clock=clock) for _ in range(2)]
        statuses = []
        for turn in range(4):
            app = replicas[turn % 2]
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
                statuses.append((await http.get("/api/renters/available-providers")).status_code)
        for app in replicas:
            await app.state.abuse_buckets.aclose()
            await app.state.gateway.limiter.aclose()
    assert statuses == [200, 200, 200, 429]


async def test_idle_buckets_are_forgotten() -> None:
    now = [0.0]
    buckets = LocalBuckets(prune_every=100, clock=lambda: now[0])
    for caller in range(99):
        await buckets.take(f"ip:{caller}", capacity=10, window_seconds=60)
    now[0] = 4000.0
    await buckets.take("ip:late", capacity=10, window_seconds=60)  # the 100th take prunes
    assert len(buckets._levels) == 1


async def test_a_body_that_trickles_in_is_cut_off(
    settings: Settings, database: Database, clock: ManualClock
) -> None:
    settings.body_timeout_seconds = 0.2
    app = create_app(settings, db=database, clock=clock)
    sent: list[dict] = []
    never = asyncio.Event()

    async def receive() -> dict:
        await never.wait()  # the client sent its headers and then nothing
        return {"type": "http.disconnect"}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "path": "/api/renters/register",
        "raw_path": b"/api/renters/register",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=5)
    assert sent[0]["status"] == 408
    assert b"not received within 0.2 s" in sent[1]["body"]


async def test_takes_that_arrive_together_go_to_redis_in_one_call() -> None:
    import redis as redis_client

    with running_redis() as url:
        buckets = RedisBuckets(url)
        await buckets.take("ip:warm", capacity=5, window_seconds=60)  # the script is loaded
        stats = redis_client.Redis.from_url(url)
        before = stats.info("commandstats")["cmdstat_evalsha"]["calls"]
        a = [buckets.take("ip:a", capacity=5, window_seconds=60) for _ in range(8)]
        waits = await asyncio.gather(*a, buckets.take("ip:b", capacity=5, window_seconds=60))
        calls = stats.info("commandstats")["cmdstat_evalsha"]["calls"] - before
        stats.close()
        await buckets.aclose()
    assert waits[:5] == [0, 0, 0, 0, 0] and all(wait > 0 for wait in waits[5:8]) and waits[8] == 0
    assert calls == 1


async def test_a_fault_in_a_redis_call_fails_its_takes_instead_of_leaving_them_waiting() -> None:
    from tests.support.postgres import free_port

    buckets = RedisBuckets(f"redis://127.0.0.1:{free_port()}/0")
    answers: list[Any] = [ValueError("not a number"), [0]]  # a fault, then one answer for two takes

    async def script(**_: Any) -> list[int]:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    buckets._script = script
    takes = [buckets.take(f"ip:{n}", capacity=5, window_seconds=60) for n in range(2)]
    faults = await asyncio.wait_for(asyncio.gather(*takes, return_exceptions=True), timeout=5)
    assert [type(fault) for fault in faults] == [ValueError, ValueError]
    takes = [buckets.take(f"ip:{n}", capacity=5, window_seconds=60) for n in range(2)]
    faults = await asyncio.wait_for(asyncio.gather(*takes, return_exceptions=True), timeout=5)
    assert [str(fault) for fault in faults] == ["Redis answered 1 takes for 2"] * 2
    await buckets.aclose()


async def test_while_redis_is_away_each_replica_limits_on_its_own(
    settings: Settings, database: Database, clock: ManualClock, caplog
) -> None:
    from dcp.gateway.ratelimit import RedisRateLimiter
    from tests.support.postgres import free_port

    settings.redis_url = f"redis://127.0.0.1:{free_port()}/0"  # nothing answers there
    settings.limits.requests_per_minute_per_ip = 2
    app = create_app(settings, db=database, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as http:
        statuses = [(await http.get("/api/renters/available-providers")).status_code for _ in range(3)]
    await app.state.abuse_buckets.aclose()
    await app.state.gateway.limiter.aclose()
    assert statuses == [200, 200, 429]  # served, and still limited, by this process's buckets
    limiter = RedisRateLimiter(settings.redis_url, requests_per_minute=1, tokens_per_minute=1_000)
    assert await limiter.check("renter", tokens=10) == 0
    assert await limiter.check("renter", tokens=10) > 0
    await limiter.aclose()
    outages = [r.getMessage() for r in caplog.records if "Redis is not answering" in r.getMessage()]
    assert len(outages) == 2  # once for the abuse limits, once for /v1's: not once per request


async def test_once_redis_answers_again_the_buckets_are_shared_again(caplog) -> None:
    from tests.support.postgres import free_port

    port = free_port()
    buckets = RedisBuckets(f"redis://127.0.0.1:{port}/0", retry_seconds=0.1)
    assert await buckets.take("ip:a", capacity=1, window_seconds=60) == 0  # this process's bucket, now empty
    with running_redis(port):
        await asyncio.sleep(0.2)  # past the retry interval
        assert await buckets.take("ip:a", capacity=1, window_seconds=60) == 0  # Redis's bucket, full
        assert await buckets.take("ip:a", capacity=1, window_seconds=60) > 0
        await buckets.aclose()
    assert "Redis is not answering" in caplog.text and "Redis answers again" in caplog.text
