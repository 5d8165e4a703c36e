"""The /v1 gateway on a real server with simulated pool providers on real WebSocket links: routing,
failover, streaming, per-token billing, the error envelope and rate limits."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from dcp.billing import settlement
from dcp.gateway.billing import Outcome
from dcp.gateway.ratelimit import RateLimiter
from dcp.gateway.routing import _rendezvous
from dcp.jobs.sweeper import release_abandoned_holds
from tests.support.factories import (
    completed_usage,
    funded_renter,
    heartbeat,
    register_provider,
    settled_money,
    submit,
)
from tests.support.fake_engine import FakeEngine
from tests.support.polling import until
from tests.support.provider_client import Leased, TestProvider

CHAT = {
    "model": "fake-model",
    "messages": [{"role": "user", "content": "Capital of Saudi Arabia?"}],
    "max_tokens": 16,
}


@pytest.fixture
async def http(live):
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as client:
        yield client


@pytest.fixture
async def engines(live, http):
    started: list[FakeEngine] = []

    async def start(behaviour: str = "ok", **kwargs) -> FakeEngine:
        provider = await register_provider(http)
        engine = await FakeEngine(live.url, provider, behaviour=behaviour, **kwargs).start()
        started.append(engine)
        return engine

    yield start
    for engine in started:
        await engine.stop()


async def _renter(http, admin, amount=10_000):
    renter = await funded_renter(http, admin, amount=amount)
    return renter, {"authorization": f"Bearer {renter.key}"}


@pytest.fixture
def money(live):
    """A renter's balance once what their requests used is settled and their allowance handed back."""

    async def read(renter) -> dict:
        return await settled_money(live, renter)

    return read


class TestModelsAndErrors:
    async def test_models_lists_what_the_pool_serves(self, http, admin, engines):
        await engines()
        _, auth = await _renter(http, admin)
        models = (await http.get("/v1/models", headers=auth)).json()
        assert models["object"] == "list"
        assert [m["id"] for m in models["data"]] == ["fake-model"]
        assert models["data"][0]["pricing"] == {
            "input_per_million_halala": 100,
            "output_per_million_halala": 300,
        }
        assert (await http.get("/v1/models/fake-model", headers=auth)).json() == models["data"][0]
        missing = await http.get("/v1/models/other-model", headers=auth)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"

    async def test_openai_s_defaults_for_what_is_not_served_are_accepted_and_not_passed_on(
        self, http, admin, engines
    ):
        engine = await engines()
        _, auth = await _renter(http, admin)
        defaults = {
            "n": None,
            "stream": None,
            "logprobs": False,
            "top_logprobs": None,
            "tools": None,
            "tool_choice": None,
            "response_format": {"type": "text"},
        }
        answer = await http.post("/v1/chat/completions", headers=auth, json={**CHAT, **defaults})
        assert answer.status_code == 200, answer.text
        assert not set(json.loads(engine.requests[0]["body"])) & {"logprobs", "tools", "response_format"}
        for asking in (
            {"logprobs": True},
            {"tools": [{"type": "function"}]},
            {"response_format": {"type": "json_object"}},
        ):
            refused = await http.post("/v1/chat/completions", headers=auth, json={**CHAT, **asking})
            assert refused.status_code == 400, asking

    async def test_envelopes(self, http, admin, engines):
        await engines()
        _, auth = await _renter(http, admin)
        missing_key = await http.post("/v1/chat/completions", json=CHAT)
        assert (
            missing_key.status_code == 401 and missing_key.json()["error"]["code"] == "authentication_error"
        )
        unknown = await http.post("/v1/chat/completions", headers=auth, json={**CHAT, "model": "gpt-9"})
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
        typo = await http.post("/v1/chat/completions", headers=auth, json={**CHAT, "temprature": 1})
        body = typo.json()["error"]
        assert (
            typo.status_code == 400
            and body["type"] == "invalid_request_error"
            and "temprature" in body["message"]
        )
        assert set(body) == {"message", "type", "code", "status", "retryable"} and body["retryable"] is False

    async def test_insufficient_balance(self, http, admin, engines, money):
        await engines()
        renter, auth = await _renter(http, admin, amount=1)
        answer = await http.post("/v1/chat/completions", headers=auth, json={**CHAT, "max_tokens": 4000})
        assert answer.status_code == 402 and answer.json()["error"]["code"] == "insufficient_balance"
        assert (await money(renter))["balance_halala"] == 1

    async def test_rate_limit_envelope_and_headers(self, http, admin, engines, live, money):
        await engines()
        live.app.state.gateway.limiter = RateLimiter(requests_per_minute=2, tokens_per_minute=1_000_000)
        renter, auth = await _renter(http, admin)
        answers = [await http.post("/v1/chat/completions", headers=auth, json=CHAT) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        limited = answers[2]
        body = limited.json()
        assert body["error"]["code"] == "rate_limit_exceeded" and body["error"]["retryable"] is True
        assert body["retry_after_seconds"] == body["error"]["retry_after_seconds"] >= 1
        assert body["retry_after_ms"] == body["error"]["retry_after_ms"]
        assert int(limited.headers["retry-after"]) == body["retry_after_seconds"]
        assert (await money(renter))["held_halala"] == 0  # a refused request holds nothing


class TestCompletions:
    async def test_chat_is_billed_per_token_once(self, http, admin, engines, money):
        engine = await engines()
        renter, auth = await _renter(http, admin)
        answer = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
        assert answer.status_code == 200
        assert answer.json()["choices"][0]["message"]["content"] == "Riyadh"
        sent = json.loads(engine.requests[0]["body"])
        assert sent["max_tokens"] == 16 and engine.requests[0]["path"] == "v1/chat/completions"
        money = await money(renter)
        # 11 prompt tokens at 100/M and 3 completion tokens at 300/M round up to 1 halala; nothing stays held.
        assert money["balance_halala"] == 10_000 - 1 and money["held_halala"] == 0

    async def test_streaming_strips_the_usage_chunk_unless_asked(self, http, admin, engines, money):
        await engines()
        renter, auth = await _renter(http, admin)
        for include in (False, True):
            body = {
                **CHAT,
                "stream": True,
                **({"stream_options": {"include_usage": True}} if include else {}),
            }
            async with http.stream("POST", "/v1/chat/completions", headers=auth, json=body) as stream:
                lines = [line async for line in stream.aiter_lines() if line.startswith("data: ")]
            assert lines[-1] == "data: [DONE]"
            chunks = [json.loads(line[6:]) for line in lines[:-1]]
            text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
            assert text == "Riyadh"
            assert any("usage" in c for c in chunks) is include
        assert (await money(renter))["held_halala"] == 0

    async def test_content_as_a_list_of_text_parts(self, http, admin, engines):
        engine = await engines()
        _renter_account, auth = await _renter(http, admin)
        parts = [{"type": "text", "text": "Capital of "}, {"type": "text", "text": "Saudi Arabia?"}]
        body = {**CHAT, "messages": [{"role": "user", "content": parts}]}
        answer = await http.post("/v1/chat/completions", headers=auth, json=body)
        assert answer.status_code == 200
        sent = json.loads(engine.requests[0]["body"])["messages"][0]["content"]
        assert sent == "Capital of Saudi Arabia?"  # every engine takes text as a string
        image = [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]
        body = {**CHAT, "messages": [{"role": "user", "content": image}]}
        refused = await http.post("/v1/chat/completions", headers=auth, json=body)
        assert refused.status_code == 400 and "text parts" in refused.json()["error"]["message"]

    async def test_legacy_completions(self, http, admin, engines):
        await engines()
        _, auth = await _renter(http, admin)
        answer = await http.post(
            "/v1/completions",
            headers=auth,
            json={"model": "fake-model", "prompt": "Capital?", "max_tokens": 8},
        )
        assert answer.json()["choices"][0]["text"] == "Riyadh"
        one = {"model": "fake-model", "prompt": ["Capital?"], "max_tokens": 8}
        assert (await http.post("/v1/completions", headers=auth, json=one)).status_code == 200
        for batch in (["a", "b"], [[1, 2, 3]], []):
            refused = await http.post("/v1/completions", headers=auth, json={**one, "prompt": batch})
            assert refused.status_code == 400 and "may hold one string" in refused.json()["error"]["message"]


def _prefers(text: str, first: FakeEngine, second: FakeEngine) -> bool:
    key = f"fake-model|{text}"
    return _rendezvous(key, first.account.id) > _rendezvous(key, second.account.id)


class TestFailover:
    async def test_a_failing_provider_is_skipped_before_any_byte(self, http, admin, engines, settings, money):
        settings.gateway.first_token_timeout_seconds = 0.5
        await engines("error500")
        await engines("silent")
        good = await engines("ok")
        renter, auth = await _renter(http, admin)
        answer = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
        assert answer.status_code == 200 and good.requests
        assert (await money(renter))["held_halala"] == 0

    @pytest.mark.parametrize("failure", ["error429", "hangup"])
    async def test_upstream_429_and_a_dropped_link_fail_over(self, http, admin, engines, failure, money):
        broken = await engines(failure)
        good = await engines("ok")
        renter, auth = await _renter(http, admin)
        # A prompt whose conversation affinity points at the broken provider, so it is tried first.
        prompt = next(text for text in (f"question {n}" for n in range(100)) if _prefers(text, broken, good))
        body = {**CHAT, "messages": [{"role": "user", "content": prompt}]}
        answer = await http.post("/v1/chat/completions", headers=auth, json=body)
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-dcp-provider-attempts"] == "2" and good.requests
        assert (await money(renter))["held_halala"] == 0

    async def test_a_long_answer_is_not_a_slow_first_token_when_the_client_does_not_stream(
        self, http, admin, engines, settings, money
    ):
        # The engine is always asked to stream: its first token comes at once, the rest after the timeout.
        settings.gateway.first_token_timeout_seconds = 0.5
        engine = await engines("hold", concurrency=1)
        await _price_per_token(http, admin)
        renter, auth = await _renter(http, admin)
        asked = asyncio.create_task(http.post("/v1/chat/completions", headers=auth, json=CHAT))
        await asyncio.sleep(1.0)  # twice the first token's timeout: before, a 504 and a failure counted
        engine.proceed.set()
        answer = await asked
        assert answer.status_code == 200, answer.text
        whole = answer.json()
        assert whole["object"] == "chat.completion" and whole["id"] == "cmpl-1"
        assert whole["choices"] == [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Riyadh"},
                "logprobs": None,
                "finish_reason": None,
            }
        ]
        assert whole["usage"] == {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
        sent = json.loads(engine.requests[0]["body"])
        assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
        assert await money(renter) == {"balance_halala": 10_000 - 14, "held_halala": 0}

    async def test_nobody_answers_costs_nothing(self, http, admin, engines, settings, money):
        settings.gateway.first_token_timeout_seconds = 0.5
        await engines("error500")
        await engines("silent")
        renter, auth = await _renter(http, admin)
        answer = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
        assert answer.status_code in (502, 504)
        error = answer.json()["error"]
        assert error["code"] in ("provider_unavailable", "upstream_timeout") and error["retryable"] is True
        money = await money(renter)
        assert money["balance_halala"] == 10_000 and money["held_halala"] == 0
        rows = (await http.get("/api/renters/usage", headers=auth)).json()["requests"]
        assert [(row["status"], row["attempts"], row["cost_halala"]) for row in rows] == [("failed", 2, 0)]

    async def test_a_failure_after_the_first_byte_ends_with_an_error_event(self, http, admin, engines, money):
        await engines("cut")
        renter, auth = await _renter(http, admin)
        async with http.stream(
            "POST", "/v1/chat/completions", headers=auth, json={**CHAT, "stream": True}
        ) as s:
            lines = [line async for line in s.aiter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        failure = json.loads(lines[-2][6:])
        assert failure["choices"][0]["finish_reason"] == "error"
        assert failure["error"]["code"] == "provider_unavailable"
        assert (await money(renter))["held_halala"] == 0


class TestClientsAndProvidersThatMisbehave:
    async def test_a_client_that_leaves_mid_stream_is_billed_what_the_provider_generated(
        self, http, admin, engines, money
    ):
        engine = await engines("hold", concurrency=1)
        await _price_per_token(http, admin)
        renter, auth = await _renter(http, admin)
        body = {**CHAT, "stream": True}
        async with (
            httpx.AsyncClient(base_url=http.base_url, timeout=30) as leaving,
            leaving.stream("POST", "/v1/chat/completions", headers=auth, json=body) as stream,
        ):
            assert (await anext(stream.aiter_lines())).startswith("data: ")  # then "stop generating"
        # The provider is still generating: its one slot stays taken until it ends.
        busy = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
        assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
        assert busy.json()["error"]["code"] == "no_capacity_available"
        engine.proceed.set()  # it finishes its answer for nobody

        async def served() -> bool:  # its slot free again: answered, not 503
            return (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200

        await until(served)
        # Both billed as reported (11 + 3 tokens at 1 halala each), the stream as if read to its end.
        assert await money(renter) == {"balance_halala": 10_000 - 2 * 14, "held_halala": 0}
        rows = (await http.get("/api/renters/usage", headers=auth)).json()["requests"]
        billed = [(row["status"], row["cost_halala"]) for row in rows if row["status"] == "completed"]
        assert billed == [("completed", 14), ("completed", 14)]

    @pytest.mark.parametrize(
        "usage",
        [None, "lots", {"prompt_tokens": "11"}, {"prompt_tokens": -5_000_000, "completion_tokens": 3}],
    )
    async def test_usage_that_is_not_token_counts_costs_nothing(self, http, admin, engines, money, usage):
        await engines(usage=usage)
        await _price_per_token(http, admin)
        renter, auth = await _renter(http, admin)
        for body in (CHAT, {**CHAT, "stream": True}):
            assert (await http.post("/v1/chat/completions", headers=auth, json=body)).status_code == 200
        assert await money(renter) == {**await money(renter), "balance_halala": 10_000, "held_halala": 0}
        rows = (await http.get("/api/renters/usage", headers=auth)).json()
        assert [row["cost_halala"] for row in rows["requests"]] == [0, 0]

    async def test_refusals_in_each_engine_s_shape_and_an_answer_cut_short(self, http, admin, engines, money):
        renter, auth = await _renter(http, admin)
        refusing = await engines("bad_request_tgi")
        answer = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
        assert answer.status_code == 400 and answer.json()["error"]["message"] == "context too long"
        await refusing.stop()
        cut = await engines("cut")
        answer = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
        assert answer.status_code == 502 and answer.json()["error"]["retryable"] is True
        assert (await money(renter))["balance_halala"] == 10_000  # neither cost anything
        await cut.stop()
        await engines("no_done")  # its usage came, so the engine finished: billed, and so sent
        answer = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
        assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "Riyadh"
        assert (await money(renter))["balance_halala"] == 10_000 - 1


class TestMetrics:
    async def test_prometheus_metrics_for_admins(self, http, admin, engines):
        await engines("error500")
        await engines("ok")
        _, auth = await _renter(http, admin)
        for _ in range(3):
            assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        assert (await http.get("/metrics")).status_code == 401
        assert (await http.get("/metrics", headers=auth)).status_code == 403
        text = (await http.get("/metrics", headers=admin)).text
        assert 'dcp_gateway_requests_total{endpoint="chat/completions",status="completed"} 3.0' in text
        assert (
            "dcp_gateway_request_seconds_bucket" in text
            and 'dcp_gateway_tokens_total{kind="completion"} 9.0' in text
        )
        assert "dcp_gateway_open_circuits" in text


class TestSharedLimits:
    async def test_replicas_share_rate_limits_through_redis(self, http, admin, engines, live):
        from dcp.gateway.ratelimit import RedisRateLimiter
        from tests.support.redis_server import running_redis

        await engines()
        renter, auth = await _renter(http, admin)
        with running_redis() as url:
            replica_a = RedisRateLimiter(url, requests_per_minute=3, tokens_per_minute=1_000_000)
            replica_b = RedisRateLimiter(url, requests_per_minute=3, tokens_per_minute=1_000_000)
            assert await replica_b.check(str(renter.id), tokens=10) == 0  # another replica spent one
            assert await replica_b.check(str(renter.id), tokens=10) == 0
            live.app.state.gateway.limiter = replica_a
            allowed = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
            limited = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
            assert allowed.status_code == 200 and limited.status_code == 429
            assert limited.json()["error"]["code"] == "rate_limit_exceeded"
            assert 1 <= int(limited.headers["retry-after"]) <= 20
            too_big = await replica_b.check("other", tokens=2_000_000)  # more than a minute's budget: capped
            assert too_big == 0
            await replica_a.aclose()
            await replica_b.aclose()


class TestPerRequestCost:
    async def test_an_admin_price_change_applies_to_the_next_request(self, http, admin, engines, money):
        await engines()
        renter, auth = await _renter(http, admin)
        assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        changed = await http.put(
            "/api/admin/model-prices",
            headers=admin,
            json={
                "model": "fake-model",
                "input_per_million_halala": 10**6,
                "output_per_million_halala": 10**6,
            },
        )
        assert changed.status_code == 200
        assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        # 1 halala at the default prices, then 11 + 3 tokens at 1 halala each, although prices are cached.
        money = await money(renter)
        assert money["balance_halala"] == 10_000 - 1 - 14 and money["held_halala"] == 0

    async def test_a_billed_request_writes_its_money_in_few_statements(
        self, http, admin, engines, live, money
    ):
        await engines()
        renter, auth = await _renter(http, admin)
        assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        gateway = live.app.state.gateway
        await gateway.settle_all()
        money_tables = ("ledger_", "settlements", "gateway_", "model_prices", "renters")
        statements: list[str] = []

        def count(_conn, _cursor, statement, *_args) -> None:
            if any(table in statement for table in money_tables):
                statements.append(statement)

        event.listen(Engine, "before_cursor_execute", count)  # every engine: readers' and writers'
        try:
            answer = await http.post("/v1/chat/completions", headers=auth, json=CHAT)
            await gateway.settle_all()
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        assert answer.status_code == 200
        # No key lookup and no hold: the key, the price and the worst case come from memory. After the
        # response: the charge on the allowance, the settlement (transaction, 3 balances, entries,
        # settlement row) and the usage row.
        assert len(statements) <= 8, "\n".join(statements)
        assert not [s for s in statements if "renters" in s or "INSERT INTO gateway_allowances" in s]
        assert (await money(renter))["balance_halala"] == 10_000 - 2

    @pytest.fixture
    def patient_settlements(self, settings):  # set before the app is built (listed before http)
        settings.gateway.settlement_batch_wait_seconds = 1.0  # each request takes a few ms in-process

    async def test_requests_one_after_the_other_share_a_settlement_transaction(
        self, patient_settlements, http, admin, engines, live, money
    ):
        await engines()
        renter, auth = await _renter(http, admin)
        gateway = live.app.state.gateway
        assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
        await gateway.settle_all()
        commits: list[str] = []

        def count(_conn, _cursor, statement, *_args) -> None:
            if statement.startswith("INSERT INTO gateway_requests"):
                commits.append(statement)

        event.listen(Engine, "before_cursor_execute", count)
        try:  # each answered before the next is sent: the settlements wait for company after the answers
            for _ in range(3):
                assert (await http.post("/v1/chat/completions", headers=auth, json=CHAT)).status_code == 200
            await gateway.settle_all()
        finally:
            event.remove(Engine, "before_cursor_execute", count)
        assert len(commits) == 1  # one INSERT of usage rows per transaction
        settled = await money(renter)
        assert settled["balance_halala"] == 10_000 - 4 and settled["held_halala"] == 0

    async def test_a_short_chat_is_billed_for_the_tokens_its_template_adds(self, http, admin, engines, money):
        await engines(usage={"prompt_tokens": 40, "completion_tokens": 1})  # 36 of them the template's
        await _price_per_token(http, admin)
        renter, auth = await _renter(http, admin)
        roles_and_texts = [("system", ""), ("user", "a"), ("assistant", ""), ("user", "b")]
        messages = [{"role": role, "content": text} for role, text in roles_and_texts]
        body = {**CHAT, "messages": messages, "max_tokens": 1}
        assert (await http.post("/v1/chat/completions", headers=auth, json=body)).status_code == 200
        assert (await money(renter))["balance_halala"] == 10_000 - 41  # not capped at the 2 bytes of text

    async def test_a_provider_cannot_bill_more_prompt_than_the_request_could_hold(
        self, http, admin, engines, money
    ):
        await engines(usage={"prompt_tokens": 1_000_000, "completion_tokens": 3})
        await _price_per_token(http, admin)
        renter, auth = await _renter(http, admin)
        body = {**CHAT, "messages": [{"role": "user", "content": "hi"}]}
        assert (await http.post("/v1/chat/completions", headers=auth, json=body)).status_code == 200
        balance = (await money(renter))["balance_halala"]  # once settled
        [row] = (await http.get("/api/renters/usage", headers=auth)).json()["requests"]
        bound = row["prompt_tokens"]  # the 2 bytes of text and what a chat template may add
        assert 2 < bound < 100 and row["cost_halala"] == bound + 3 and balance == 10_000 - bound - 3

    async def test_a_free_model_holds_and_bills_nothing_yet_logs_usage(self, http, admin, engines, money):
        await engines(concurrency=64)
        body = {"model": "fake-model", "input_per_million_halala": 0, "output_per_million_halala": 0}
        assert (await http.put("/api/admin/model-prices", headers=admin, json=body)).status_code == 200
        renter, auth = await _renter(http, admin, amount=1)
        answers = await asyncio.gather(
            *(http.post("/v1/chat/completions", headers=auth, json=CHAT) for _ in range(5))
        )
        assert [a.status_code for a in answers] == [200] * 5
        assert (await money(renter))["held_halala"] == 0  # a free model takes no allowance
        usage = (await http.get("/api/renters/usage", headers=renter.renter_headers)).json()
        assert usage["total"] == 5 and {row["cost_halala"] for row in usage["requests"]} == {0}


async def _price_per_token(http, admin, halala: int = 1) -> None:
    per_million = halala * 10**6
    body = {
        "model": "fake-model",
        "input_per_million_halala": per_million,
        "output_per_million_halala": per_million,
    }
    assert (await http.put("/api/admin/model-prices", headers=admin, json=body)).status_code == 200


class TestConcurrentRequests:
    """Holds and settlements of requests that arrive together are written in shared transactions."""

    async def test_each_request_is_billed_exactly_once(self, http, admin, engines, money):
        await engines(concurrency=64)
        await engines(concurrency=64)
        await _price_per_token(http, admin)
        renter, auth = await _renter(http, admin)
        answers = await asyncio.gather(
            *(http.post("/v1/chat/completions", headers=auth, json=CHAT) for _ in range(40))
        )
        assert [a.status_code for a in answers] == [200] * 40
        # Every request's own price: 11 prompt and 3 completion tokens at 1 halala each.
        money = await money(renter)
        assert money["balance_halala"] == 10_000 - 40 * 14 and money["held_halala"] == 0
        usage = (await http.get("/api/renters/usage?limit=100", headers=renter.renter_headers)).json()
        assert usage["total"] == 40 and {row["cost_halala"] for row in usage["requests"]} == {14}
        assert len({row["request_id"] for row in usage["requests"]}) == 40

    async def test_many_requests_at_once_never_overspend(self, http, admin, engines, money):
        await engines(concurrency=64)
        await _price_per_token(http, admin)
        # The worst case of a request is 24 prompt bytes + 72 tokens of chat template + 16 tokens = 112
        # halala; 250 covers two at a time.
        renter, auth = await _renter(http, admin, amount=250)
        answers = await asyncio.gather(
            *(http.post("/v1/chat/completions", headers=auth, json=CHAT) for _ in range(30))
        )
        codes = [a.status_code for a in answers]
        served = codes.count(200)
        assert served >= 2 and codes.count(402) == 30 - served
        assert all(
            a.json()["error"]["code"] == "insufficient_balance" for a in answers if a.status_code == 402
        )
        money = await money(renter)
        assert money["balance_halala"] == 250 - 14 * served >= 0 and money["held_halala"] == 0
        usage = (await http.get("/api/renters/usage?limit=100", headers=renter.renter_headers)).json()
        assert usage["total"] == served  # a refused request leaves no usage row

    async def test_renters_in_one_group_are_billed_apart(self, http, admin, engines, money):
        await engines(concurrency=64)
        await _price_per_token(http, admin)
        rich, rich_auth = await _renter(http, admin, amount=10_000)
        poor, poor_auth = await _renter(http, admin, amount=10)  # less than one worst case
        answers = await asyncio.gather(
            *(http.post("/v1/chat/completions", headers=rich_auth, json=CHAT) for _ in range(10)),
            *(http.post("/v1/chat/completions", headers=poor_auth, json=CHAT) for _ in range(10)),
        )
        assert [a.status_code for a in answers] == [200] * 10 + [402] * 10
        assert (await money(rich))["balance_halala"] == 10_000 - 10 * 14
        assert (await money(poor))["balance_halala"] == 10


class TestAbandonedHolds:
    """A server process that dies between a request's hold and its settlement leaves the hold behind."""

    async def _hold(self, live, renter_id: int, request_id: str, amount: int, clock) -> None:
        async with live.app.state.db.writer() as session:
            await settlement.hold(
                session, renter_id=renter_id, work_ref=request_id, amount=amount, now=clock.now()
            )
            await session.commit()

    async def _sweep(self, live, clock, since=None):
        app = live.app.state
        return await release_abandoned_holds(app.db, settings=app.settings, now=clock.now(), since=since)

    async def test_the_sweeper_refunds_it_after_the_timeout(self, http, admin, live, clock, settings, money):
        renter, _ = await _renter(http, admin)
        await self._hold(live, renter.id, "v1-crashed-1", 300, clock)
        assert (await self._sweep(live, clock))[0] == 0  # a request may still be running
        assert (await money(renter))["held_halala"] == 300
        clock.advance(seconds=settings.gateway.abandoned_hold_seconds + 1)
        released, _ = await self._sweep(live, clock)
        assert released == 1
        money = await money(renter)
        assert money["balance_halala"] == 10_000 and money["held_halala"] == 0
        assert (await self._sweep(live, clock, since=None))[0] == 0  # refunded once, even looking back again

    async def test_a_request_finishing_after_it_is_billed_nothing(
        self, http, admin, live, clock, settings, money
    ):
        renter, _ = await _renter(http, admin)
        await self._hold(live, renter.id, "v1-late-1", 300, clock)
        clock.advance(seconds=settings.gateway.abandoned_hold_seconds + 1)
        assert (await self._sweep(live, clock))[0] == 1
        finish = settlement.billed(
            renter_id=renter.id,
            provider_id=1,
            work_ref="v1-late-1",
            held=300,
            cost=120,
            provider_percent=75,
            now=clock.now(),
        )
        usage = completed_usage(
            request_id="v1-late-1", renter_id=renter.id, provider_id=1, cost=120, now=clock.now()
        )
        await live.app.state.gateway.outcomes.write(Outcome(finish, usage))
        assert (await money(renter))["balance_halala"] == 10_000
        assert (await money(renter))["balance_halala"] == 10_000  # the platform absorbs it
        rows = (await http.get("/api/renters/usage", headers=renter.renter_headers)).json()["requests"]
        assert [(row["request_id"], row["cost_halala"]) for row in rows] == [("v1-late-1", 0)]


async def test_a_providers_endpoint_answer_cannot_act_as_a_page_of_dcp(engines, http, admin):
    # A vllm_serve endpoint is relayed from the provider's engine under DCP's own origin: a provider that
    # answered with a page and its script must not get it run there (signed-in operators' cookies).
    engine = await engines("raw")
    assert (await heartbeat(http, engine.account)).status_code == 200  # its GPU, for vllm_serve
    renter = await funded_renter(http, admin)
    body = {"job_type": "vllm_serve", "duration_minutes": 30, "params": {"model": "gemma3-270m"}}
    job = (await submit(http, renter, body)).json()["job"]
    spec = (await asyncio.wait_for(engine.tasks.get(), timeout=10))["spec"]
    leased = Leased(spec["job_id"], spec["lease_token"], spec)
    daemon = TestProvider(http, engine.account)
    assert (await daemon.start(leased)).status_code == 200
    assert (await daemon.events(leased, endpoint_url="serving")).status_code == 200
    output = await http.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)
    url = output.json()["result"]["endpoint_url"]

    engine.raw_start = {"status": 200, "content_type": "text/html"}
    engine.raw_body = "<script>alert(1)</script>"
    page = await http.get(f"{url}/models")
    assert page.status_code == 200 and page.headers["content-type"] == "application/octet-stream"
    assert page.headers["content-security-policy"] == "sandbox; default-src 'none'"
    assert page.headers["x-content-type-options"] == "nosniff"
    engine.raw_start, engine.raw_body = {"status": 404, "content_type": "application/json"}, "{}"
    answer = await http.get(f"{url}/models")
    assert (answer.status_code, answer.headers["content-type"]) == (404, "application/json")
    for status in ("abc", {"code": 200}, 99, 1000, None, True):
        engine.raw_start = {"status": status, "content_type": "application/json"}
        broken = await http.get(f"{url}/models")
        assert broken.status_code == 502 and "valid HTTP status" in broken.json()["error"], status
