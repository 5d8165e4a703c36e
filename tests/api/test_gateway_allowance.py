"""The per-process allowance that /v1 requests reserve their worst case from: taken when short, shared by
many requests, topped up, spent to the last halala, handed back when idle and at shutdown, released by the
sweeper when its process stops, and a settlement that comes after that charges nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import uvicorn
from sqlalchemy import select

from dcp.app import create_app
from dcp.billing import allowances, settlement
from dcp.billing.ledger import TxKind
from dcp.gateway.allowance import release_stale
from dcp.gateway.billing import Outcome
from dcp.models import GatewayAllowance, LedgerTransaction
from tests.api import test_gateway as gateway_tests
from tests.support.factories import completed_usage, register_provider
from tests.support.fake_engine import FakeEngine
from tests.support.postgres import free_port

CHAT, _price_per_token, _renter = gateway_tests.CHAT, gateway_tests._price_per_token, gateway_tests._renter
http, engines, money = gateway_tests.http, gateway_tests.engines, gateway_tests.money  # the same fixtures
# At 1 halala a token, CHAT's worst case is 112 (24 bytes of prompt, 72 tokens of chat template, 16 to
# generate) and it costs 14 (the fake engine counts 11 and 3). EXACT's worst case, 86 (11 + 72 + 3), is what
# it costs from an engine that counts all of that (EXACT_USAGE).
EXACT = {**CHAT, "messages": [{"role": "user", "content": "Hello world"}], "max_tokens": 3}
EXACT_USAGE = {"prompt_tokens": 83, "completion_tokens": 3}


async def _rows(live) -> list[GatewayAllowance]:
    async with live.app.state.db.reader() as session:
        found = await session.execute(select(GatewayAllowance).order_by(GatewayAllowance.id))
        return list(found.scalars())


async def _holds(live) -> int:
    async with live.app.state.db.reader() as session:
        found = await session.execute(
            select(LedgerTransaction.id).where(
                LedgerTransaction.kind == TxKind.hold,
                LedgerTransaction.reference.startswith(allowances.PREFIX),
            )
        )
        return len(found.all())


async def _balance(http, renter) -> dict:
    found = (await http.get("/api/renters/balance", headers=renter.renter_headers)).json()
    return {"balance_halala": found["balance_halala"], "held_halala": found["held_halala"]}


class TestAllowance:
    async def test_taken_once_for_many_requests_then_handed_back(self, http, admin, engines, live, money):
        await engines(concurrency=64)
        renter, auth = await _renter(http, admin)
        for _ in range(10):
            assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        answers = await asyncio.gather(
            *(http.post("/v1/chat/completions", headers=auth, json=CHAT) for _ in range(20))
        )
        assert [a.status_code for a in answers] == [200] * 20
        await live.app.state.gateway.settle_all()
        chunk = live.app.state.settings.gateway.allowance_halala
        assert await _balance(http, renter) == {"balance_halala": 10_000 - chunk, "held_halala": chunk - 30}
        assert await _holds(live) == 1  # one hold for 30 requests
        money_after = await money(renter)  # hands the allowance back
        assert money_after == {"balance_halala": 10_000 - 30, "held_halala": 0}
        [row] = await _rows(live)
        assert row.closed_at is not None and (row.held_halala, row.spent_halala) == (chunk, 30)

    async def test_a_short_allowance_is_topped_up(self, http, admin, engines, live, settings, money):
        await engines()
        await _price_per_token(http, admin)
        settings.gateway.allowance_halala = 130  # a request's worst case is 112, its cost 14
        renter, auth = await _renter(http, admin)
        for _ in range(3):  # the third finds 102 free: another 130 is taken
            assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        await live.app.state.gateway.settle_all()
        [row] = await _rows(live)
        assert (row.held_halala, row.spent_halala) == (260, 42) and row.closed_at is None
        assert await _holds(live) == 2
        assert await money(renter) == {"balance_halala": 10_000 - 42, "held_halala": 0}

    async def test_a_balance_below_the_chunk_is_spent_to_zero_then_402(self, http, admin, engines, money):
        await engines(usage=EXACT_USAGE)
        await _price_per_token(http, admin)
        renter, auth = await _renter(http, admin, amount=3 * 86)
        answers = [await http.post("/v1/chat/completions", headers=auth, json=EXACT) for _ in range(4)]
        assert [a.status_code for a in answers] == [200, 200, 200, 402]
        error = answers[3].json()["error"]
        assert error["code"] == "insufficient_balance" and error["type"] and error["retryable"] is False
        # The request's worst case, and all the renter still has (nothing: the allowance spent it).
        assert (error["required_halala"], error["available_halala"]) == (86, 0)
        assert await money(renter) == {"balance_halala": 0, "held_halala": 0}

    async def test_a_402_counts_what_the_allowance_still_has(self, http, admin, engines, money):
        await engines()
        await _price_per_token(http, admin)
        renter, auth = await _renter(http, admin, amount=120)  # worst case 112: 8 stay in the allowance
        assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        refused = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
        assert refused.status_code == 402
        error = refused.json()["error"]
        assert (error["required_halala"], error["available_halala"]) == (112, 120 - 14)
        assert "1.12 SAR needed, 1.06 SAR available" in error["message"]
        assert await money(renter) == {"balance_halala": 120 - 14, "held_halala": 0}

    async def test_handed_back_when_idle(self, http, admin, engines, settings):
        settings.gateway.allowance_idle_seconds = 0.1
        await engines()
        renter, auth = await _renter(http, admin)
        assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        deadline = asyncio.get_running_loop().time() + 10
        while (await _balance(http, renter))["held_halala"]:
            assert asyncio.get_running_loop().time() < deadline, "the idle allowance was not handed back"
            await asyncio.sleep(0.05)
        assert await _balance(http, renter) == {"balance_halala": 10_000 - 1, "held_halala": 0}


@contextlib.asynccontextmanager
async def _another_replica(settings, database, clock) -> AsyncIterator[str]:
    """A second server on the same database, stopped at the end the way uvicorn stops on SIGTERM."""
    port = free_port()
    app = create_app(settings.model_copy(deep=True), db=database, clock=clock)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:  # noqa: ASYNC110 (uvicorn offers no event to wait on)
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class TestReplicas:
    async def test_a_small_balance_held_by_one_replica_is_refused_by_another_until_handed_back(
        self, http, admin, engines, live, settings, database, clock, money
    ):
        await engines()
        await _price_per_token(http, admin)
        renter, auth = await _renter(http, admin, amount=150)  # a request's worst case is 112, its cost 14
        async with (
            _another_replica(settings, database, clock) as base,
            httpx.AsyncClient(base_url=base, timeout=30) as other,
        ):
            engine = await FakeEngine(base, await register_provider(other)).start()
            assert (await other.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
            # The other replica's allowance holds all 150: this one has nothing to take.
            refused = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
            assert refused.status_code == 402
            assert refused.json()["error"]["code"] == "insufficient_balance"
            await engine.stop()
        # Stopping hands it back; then this replica serves the renter.
        assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        assert await money(renter) == {"balance_halala": 150 - 28, "held_halala": 0}


class TestWhenTheProcessStops:
    async def test_handed_back_at_shutdown(self, http, admin, live, settings, database, clock):
        async with _another_replica(settings, database, clock) as base:
            async with httpx.AsyncClient(base_url=base, timeout=30) as other:
                engine = await FakeEngine(base, await register_provider(other)).start()
                renter, auth = await _renter(http, admin)
                assert (await other.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
                await engine.stop()
            assert (await _balance(http, renter))["held_halala"] > 0
        assert await _balance(http, renter) == {"balance_halala": 10_000 - 1, "held_halala": 0}

    async def test_the_sweeper_releases_a_stopped_process_allowance(self, http, admin, live, clock, settings):
        renter, _ = await _renter(http, admin)
        async with live.app.state.db.writer() as session:
            await allowances.take(
                session,
                renter_id=renter.id,
                allowance_id=None,
                ref=allowances.reference(process="dead", renter_id=renter.id, number=1),
                process="dead",
                need=40,
                chunk=1000,
                now=clock.now(),
            )
            await session.commit()
        db, limits = live.app.state.db, settings.gateway
        assert await release_stale(db, limits=limits, now=clock.now()) == 0  # it may still be in use
        clock.advance(seconds=limits.allowance_expiry_seconds + 1)
        assert await release_stale(db, limits=limits, now=clock.now()) == 1
        assert await _balance(http, renter) == {"balance_halala": 10_000, "held_halala": 0}
        assert await release_stale(db, limits=limits, now=clock.now()) == 0  # once

    async def test_a_settlement_after_the_release_charges_nothing(
        self, http, admin, engines, live, clock, settings, money
    ):
        """The process stalled past the timeout: the sweeper released its allowance, then it wakes up and
        settles requests it served on it, and serves one more from what it still believes it holds."""
        await engines()
        await _price_per_token(http, admin)
        renter, auth = await _renter(http, admin)
        gateway = live.app.state.gateway
        assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        await gateway.settle_all()
        [row] = await _rows(live)
        # The sweeper's clock, past the timeout (the server's own stays put, so its providers stay online).
        later = clock.now() + timedelta(seconds=settings.gateway.allowance_expiry_seconds + 1)
        assert await release_stale(live.app.state.db, limits=settings.gateway, now=later) == 1
        assert await _balance(http, renter) == {"balance_halala": 10_000 - 14, "held_halala": 0}
        late = settlement.drawn(
            renter_id=renter.id,
            provider_id=1,
            work_ref="v1-late",
            cost=14,
            provider_percent=75,
            now=clock.now(),
        )
        usage = completed_usage(
            request_id="v1-late", renter_id=renter.id, provider_id=1, cost=14, now=clock.now()
        )
        await gateway.outcomes.write(Outcome(late, usage, row.id))
        assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        await gateway.settle_all()
        assert await _balance(http, renter) == {"balance_halala": 10_000 - 14, "held_halala": 0}
        rows = (await http.get("/api/renters/usage", headers=renter.renter_headers)).json()["requests"]
        assert sorted(r["cost_halala"] for r in rows) == [0, 0, 14]
        # Once the process learns its allowance was closed, it opens a new one and bills again.
        await gateway.allowances._renew()
        assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        assert await money(renter) == {"balance_halala": 10_000 - 28, "held_halala": 0}
