"""Submitting jobs: the seed's body and job object, validation, the hold, idempotency and placement."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import event, update

from dcp.billing import ledger
from dcp.jobs.errors import IdempotencyMismatch
from dcp.jobs.schemas import JobSubmit
from dcp.jobs.sweeper import refresh_reliability
from dcp.models import Provider
from tests.support.factories import (
    Account,
    funded_renter,
    heartbeat,
    llm_job,
    online_provider,
    register_renter,
    submit,
    waiting_copies,
)

SEED_FIELDS = {
    "id",
    "job_id",
    "provider_id",
    "renter_id",
    "job_type",
    "model",
    "status",
    "submitted_at",
    "duration_minutes",
    "cost_halala",
    "max_duration_seconds",
    "timeout_at",
    "gpu_requirements",
    "container_spec",
    "workspace_volume_name",
    "checkpoint_enabled",
    "task_spec_signed",
    "priority",
    "pricing_class",
    "prewarm_requested",
    "queue_position",
}


async def _balance(client, renter):
    return (await client.get("/api/renters/balance", headers=renter.renter_headers)).json()


class TestSeedContract:
    @pytest.mark.parametrize("base", ["/api", "/api/dc1"])
    async def test_seed_example_returns_the_full_job(self, client, admin, base):
        provider = await online_provider(client)
        renter = await funded_renter(client, admin)
        answer = await client.post(
            f"{base}/jobs/submit",
            headers={"x-renter-key": renter.key},
            json={
                "provider_id": provider.id,
                "job_type": "llm_inference",
                "duration_minutes": 3,
                "max_duration_seconds": 180,
                "container_spec": {"image_type": "vllm-serve"},
                "params": {
                    "model": "TinyLlama/TinyLlama-1.1B-Chat-v1.0",
                    "prompt": "Summarize DCP in three bullets",
                },
            },
        )
        assert answer.status_code == 201, answer.text
        body = answer.json()
        assert body["success"] is True
        job = body["job"]
        assert set(job) >= SEED_FIELDS
        assert job["job_id"].startswith("job-") and job["status"] == "pending"
        assert job["provider_id"] == provider.id and job["renter_id"] == renter.id
        assert job["cost_halala"] == 45  # 15 halala/minute x 3 minutes, standard class
        assert job["container_spec"] == {"image_type": "vllm-serve", "pricing_class": "standard"}
        assert job["workspace_volume_name"] == f"dcp-job-{job['job_id']}"
        assert job["task_spec_signed"] is True and job["queue_position"] == 1
        assert (await _balance(client, renter))["held_halala"] == 45

    async def test_oldest_seed_body_with_key_and_prompt_at_the_top(self, client, admin):
        provider = await online_provider(client)
        renter = await funded_renter(client, admin)
        answer = await client.post(
            "/api/jobs/submit",
            json={
                "renter_key": renter.key,
                "provider_id": provider.id,
                "job_type": "llm",
                "duration_minutes": 1,
                "prompt": "Hello",
                "model": "gemma3-270m",
            },
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["job"]["job_type"] == "llm_inference"

    @pytest.mark.parametrize(
        ("spelling", "expected", "params"),
        [
            ("llm-inference", "llm_inference", {"prompt": "hi"}),
            ("image_gen", "image_generation", {"prompt": "a camel"}),
            ("vllm-serve", "vllm_serve", {"model": "gemma3-270m"}),
            ("custom-container", "custom_container", {"script": "print(1)"}),
        ],
    )
    async def test_seed_spellings_of_job_types(self, client, admin, spelling, expected, params):
        await online_provider(client)
        renter = await funded_renter(client, admin)
        answer = await submit(client, renter, {"job_type": spelling, "duration_minutes": 1, "params": params})
        assert answer.status_code == 201, answer.text
        assert answer.json()["job"]["job_type"] == expected

    async def test_pricing_classes(self, client, admin):
        await online_provider(client)
        renter = await funded_renter(client, admin)
        priority = await submit(client, renter, llm_job(pricing_class="priority", duration_minutes=10))
        economy = await submit(
            client, renter, llm_job(container_spec={"pricing_class": "economy"}, duration_minutes=10)
        )
        assert priority.json()["job"]["cost_halala"] == 180 and economy.json()["job"]["cost_halala"] == 135


class TestValidation:
    async def test_missing_fields_named_like_the_seed(self, client, admin):
        renter = await funded_renter(client, admin)
        answer = await submit(client, renter, {})
        assert answer.status_code == 400
        assert answer.json() == {"error": "Missing required fields: job_type, duration_minutes"}

    @pytest.mark.parametrize(
        ("job_type", "params", "fragment"),
        [
            ("llm_inference", {}, "params.prompt"),
            ("llm_inference", {"prompt": "x", "max_tokens": 5000}, "params.max_tokens"),
            ("llm_inference", {"prompt": "x", "temperature": 3}, "params.temperature"),
            ("llm_inference", {"prompt": "x", "sampler": "fast"}, "params.sampler"),
            ("image_generation", {"prompt": "x", "steps": 151}, "params.steps"),
            ("image_generation", {"prompt": "x", "steps": 0}, "params.steps"),
            ("image_generation", {"prompt": "x", "width": 513}, "params.width"),
            ("image_generation", {"prompt": "x", "height": 4096}, "params.height"),
            ("vllm_serve", {}, "params.model"),
            ("vllm_serve", {"model": "m", "dtype": "int3"}, "params.dtype"),
            ("custom_container", {"script": "x" * (256 * 1024 + 1)}, "params.script"),
            (
                "custom_container",
                {"script": "print(1)", "image_override": "Bad Image!"},
                "params.image_override",
            ),
        ],
    )
    async def test_params_are_checked_per_type_and_nothing_is_held(
        self, client, admin, job_type, params, fragment
    ):
        await online_provider(client)
        renter = await funded_renter(client, admin)
        answer = await submit(client, renter, {"job_type": job_type, "duration_minutes": 1, "params": params})
        assert answer.status_code == 400, answer.text
        assert fragment in answer.json()["error"]
        assert (await _balance(client, renter))["held_halala"] == 0

    @pytest.mark.parametrize(
        "body",
        [
            llm_job(job_type="quantum"),
            llm_job(duration_minutes=0),
            llm_job(duration_minutes=1.5),
            llm_job(duration_minutes="3"),
            llm_job(max_duration_seconds=5),
            llm_job(priority=11),
            llm_job(pricing_class="vip"),
            llm_job(provider_id="42"),
            llm_job(gpu_requirements={"min_vram_gb": -1}),
            llm_job(params="prompt"),
        ],
    )
    async def test_bad_fields(self, client, admin, body):
        await online_provider(client)
        renter = await funded_renter(client, admin)
        answer = await submit(client, renter, body)
        assert answer.status_code == 400, answer.text
        assert (await client.get("/api/jobs/history", headers=renter.renter_headers)).json()["total"] == 0

    @pytest.mark.parametrize("key", ["", "k" * 101])
    async def test_bad_idempotency_key(self, client, admin, key):
        await online_provider(client)
        renter = await funded_renter(client, admin)
        answer = await submit(client, renter, llm_job(), **{"Idempotency-Key": key})
        assert answer.status_code == 400, answer.text
        assert "idempotency-key" in answer.json()["error"].lower()
        assert (await client.get("/api/jobs/history", headers=renter.renter_headers)).json()["total"] == 0

    async def test_insufficient_balance_changes_nothing(self, client, admin):
        await online_provider(client)
        renter = await funded_renter(client, admin, amount=40)
        answer = await submit(client, renter, llm_job())
        assert answer.status_code == 402
        body = answer.json()
        assert body["error"].startswith("Insufficient balance")
        assert body["required_halala"] == 45 and body["available_halala"] == 40
        assert (await _balance(client, renter))["balance_halala"] == 40
        assert (await client.get("/api/jobs/history", headers=renter.renter_headers)).json()["total"] == 0

    async def test_provider_key_cannot_submit(self, client):
        provider = await online_provider(client)
        answer = await client.post("/api/jobs/submit", headers=provider.provider_headers, json=llm_job())
        assert answer.status_code == 403


class TestIdempotency:
    async def test_retried_submit_returns_the_same_job(self, client, admin):
        await online_provider(client)
        renter = await funded_renter(client, admin)
        first = await submit(client, renter, llm_job(), **{"Idempotency-Key": "batch-1-item-7"})
        again = await submit(client, renter, llm_job(), **{"Idempotency-Key": "batch-1-item-7"})
        assert first.status_code == again.status_code == 201
        assert first.json()["job"]["job_id"] == again.json()["job"]["job_id"]
        assert (await _balance(client, renter))["held_halala"] == 45
        other = await submit(
            client, renter, llm_job(duration_minutes=4), **{"Idempotency-Key": "batch-1-item-7"}
        )
        assert other.status_code == 409


class TestPlacement:
    async def test_requested_provider_must_be_able_to_take_it(self, client, admin):
        renter = await funded_renter(client, admin)
        stale = await online_provider(client)
        small = await online_provider(client, gpu_vram_mib=8192)
        paused = await online_provider(client)
        await client.post("/api/providers/pause", headers=paused.provider_headers)
        suspended = await online_provider(client)
        await client.post(f"/api/admin/providers/{suspended.id}/suspend", headers=admin)
        cases = [
            (9999, {}, "no provider has this id"),
            (paused.id, {}, "paused"),
            (suspended.id, {}, "suspended"),
            (small.id, {"gpu_requirements": {"min_vram_gb": 16}}, "GiB"),
            (small.id, {"gpu_requirements": {"gpu_model": "H100"}}, "GPU"),
        ]
        for provider_id, extra, fragment in cases:
            answer = await submit(client, renter, llm_job(provider_id=provider_id, **extra))
            assert answer.status_code == 409, (provider_id, answer.text)
            assert fragment in answer.json()["error"]
        assert stale  # keeps the provider list realistic
        assert (await _balance(client, renter))["held_halala"] == 0

    async def test_offline_requested_provider(self, client, admin, clock):
        renter = await funded_renter(client, admin)
        provider = await online_provider(client)
        clock.advance(seconds=120)
        answer = await submit(client, renter, llm_job(provider_id=provider.id))
        assert answer.status_code == 409 and "offline" in answer.json()["error"]

    async def test_auto_placement_prefers_capable_idle_cached(self, client, admin):
        renter = await funded_renter(client, admin)
        await online_provider(client, gpu_vram_mib=8192)
        big = await online_provider(client, gpu_vram_mib=24564)
        cached = await online_provider(client, gpu_vram_mib=24564)
        await heartbeat(client, cached, gpu_vram_mib=24564)
        await client.post(
            "/api/providers/heartbeat",
            headers=cached.provider_headers,
            json={
                "gpu_status": {"gpu_name": "NVIDIA RTX 4090", "gpu_vram_mib": 24564},
                "cached_models": ["gemma3-270m"],
            },
        )
        answer = await submit(client, renter, llm_job(gpu_requirements={"min_vram_gb": 16}))
        assert answer.json()["job"]["provider_id"] == cached.id
        assert big

    async def test_auto_placement_walks_reliability_then_price_and_skips_busy(self, client, admin, clock):
        renter = await funded_renter(client, admin)
        steady = await online_provider(client)
        dear = await online_provider(client)
        flaky = await online_provider(client)
        sheet = (await client.get("/api/providers/prices", headers=dear.provider_headers)).json()
        highest = sheet["bounds"]["llm_inference"]["max"]
        await client.put(
            "/api/providers/prices", headers=dear.provider_headers, json={"llm_inference": highest}
        )
        app = client._transport.app
        async with app.state.db.writer() as session:
            await session.execute(update(Provider).where(Provider.id == flaky.id).values(jobs_lost=5))
            await session.commit()

        async def placed() -> int | None:
            job = (await submit(client, renter, llm_job())).json()["job"]
            return job["provider_id"]

        assert await placed() == flaky.id  # its losses count once the sweeper refreshed the ranking
        await refresh_reliability(app.state.db, settings=app.state.settings, now=clock.now())
        assert await placed() == steady.id  # as reliable as dear, and cheaper
        assert await placed() == dear.id  # the others hold a job each (one slot)
        assert await placed() is None  # every provider is busy: the shared queue

    async def test_no_capable_provider_online(self, client, admin):
        renter = await funded_renter(client, admin)
        await online_provider(client, gpu_vram_mib=8192)
        answer = await submit(client, renter, llm_job(gpu_requirements={"min_vram_gb": 80}))
        assert answer.status_code == 409
        assert answer.json() == {
            "error": "No online provider meets this job's requirements right now; try again later",
            "code": "no_capacity_available",
        }

    async def test_queue_positions_on_a_busy_provider(self, client, admin):
        renter = await funded_renter(client, admin)
        provider = await online_provider(client)
        jobs = [
            (await submit(client, renter, llm_job(provider_id=provider.id))).json()["job"] for _ in range(3)
        ]
        assert [j["queue_position"] for j in jobs] == [1, 2, 3]
        urgent = (await submit(client, renter, llm_job(provider_id=provider.id, priority=9))).json()["job"]
        assert urgent["queue_position"] == 1
        again = (await client.get(f"/api/jobs/{jobs[2]['job_id']}", headers=renter.renter_headers)).json()
        assert again["job"]["queue_position"] == 4

    async def test_positions_are_counted_up_to_1001(self, client, admin):
        renter = await funded_renter(client, admin)
        await online_provider(client)  # one slot: the first job takes it, the next wait in the shared queue
        await submit(client, renter, llm_job())
        first = (await submit(client, renter, llm_job())).json()["job"]
        await waiting_copies(client._transport.app.state.db, first["job_id"], count=998)
        made = [(await submit(client, renter, llm_job())).json()["job"] for _ in range(3)]
        assert [job["queue_position"] for job in made] == [1000, 1001, 1001]  # the last has 1,001 ahead
        urgent = (await submit(client, renter, llm_job(priority=9))).json()["job"]
        assert urgent["queue_position"] == 1
        positions = [
            (await client.get(f"/api/jobs/{job['job_id']}", headers=renter.renter_headers)).json()["job"][
                "queue_position"
            ]
            for job in (first, *made)
        ]
        assert positions == [2, 1001, 1001, 1001]  # the urgent one went ahead of them all

    async def test_renter_without_money_or_key(self, client):
        renter = await register_renter(client)
        assert (await client.post("/api/jobs/submit", json=llm_job())).status_code == 401
        await online_provider(client)
        assert (await submit(client, renter, llm_job())).status_code == 402


class TestConcurrency:
    async def test_many_submits_at_once_never_overspend(self, client, admin):
        await online_provider(client)
        renter = await funded_renter(client, admin, amount=14 * 45 + 30)
        answers = await asyncio.gather(*(submit(client, renter, llm_job()) for _ in range(30)))
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [201] * 14 + [402] * 16
        balance = await _balance(client, renter)
        assert balance["balance_halala"] == 30 and balance["held_halala"] == 14 * 45
        history = (await client.get("/api/jobs/history", headers=renter.renter_headers)).json()
        assert history["total"] == 14  # every refused submit left nothing behind


class TestBatches:
    """Submits that arrive together are written in one transaction, each with its own outcome."""

    @staticmethod
    async def _at_once(
        client, clock, submits: list[tuple[Account, dict, str | None]], inserts: list[str] | None = None
    ) -> list[Any]:
        """Hand the submits to the app's writer together (all queue before it runs); each one's Submitted or
        error. The jobs' INSERT statements are collected in ``inserts``; without it, there must be one."""
        app = client._transport.app
        db, writer = app.state.db, app.state.submits
        one_batch = inserts is None
        inserts = [] if inserts is None else inserts

        def seen(_conn, _cursor, statement, *_args) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO JOBS"):
                inserts.append(statement)

        engine = (db.write_engine or db.engine).sync_engine
        event.listen(engine, "before_cursor_execute", seen)
        try:
            outcomes = await asyncio.gather(
                *(
                    writer.submit(
                        renter_id=renter.id,
                        body=JobSubmit.model_validate(body),
                        idempotency_key=key,
                        now=clock.now(),
                    )
                    for renter, body, key in submits
                ),
                return_exceptions=True,
            )
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        assert not one_batch or len(inserts) == 1
        return outcomes

    async def test_submits_at_once_are_placed_as_if_one_after_another(self, client, admin, clock):
        renter = await funded_renter(client, admin)
        providers = {(await online_provider(client)).id for _ in range(3)}
        made = await self._at_once(client, clock, [(renter, llm_job(), None)] * 6)
        placed = [m.job.provider_id for m in made if m.job.provider_id is not None]
        assert sorted(placed) == sorted(providers)  # one slot each: one job each, the rest queue
        assert [m.view.queue_position for m in made if m.job.provider_id is None] == [1, 2, 3]
        assert all(m.created for m in made)
        assert (await _balance(client, renter))["held_halala"] == 6 * 45
        listed = (await client.get(f"/api/jobs/{made[-1].job.job_id}", headers=renter.renter_headers)).json()
        assert listed["job"] == made[-1].view.model_dump(mode="json")

    async def test_a_refused_submit_leaves_the_others_of_its_batch(self, client, admin, clock):
        await online_provider(client)
        rich, poor = await funded_renter(client, admin), await funded_renter(client, admin, amount=100)
        made = await self._at_once(
            client,
            clock,
            [
                (rich, llm_job(), None),
                (poor, llm_job(), None),  # 45 of its 100
                (rich, llm_job(provider_id=9999), None),
                (poor, llm_job(), None),  # 45 of the 55 left
                (poor, llm_job(), None),  # 45 > 10: refused
                (rich, llm_job(gpu_requirements={"min_vram_gb": 80}), None),
            ],
        )
        kinds = [type(m).__name__ for m in made]
        assert kinds == [
            "Submitted",
            "Submitted",
            "ProviderUnavailable",
            "Submitted",
            "InsufficientFunds",
            "NoCapacity",
        ]
        assert (await _balance(client, rich))["held_halala"] == 45
        assert (await _balance(client, poor))["held_halala"] == 90

    async def test_money_taken_after_the_batch_read_it_fails_only_that_submit(
        self, client, admin, clock, monkeypatch
    ):
        # As on PostgreSQL when another server spends the renter's money between the batch's read of the
        # balances and its holds: the conditional UPDATE refuses, and the submits are written one by one.
        await online_provider(client)
        rich, poor = await funded_renter(client, admin), await funded_renter(client, admin, amount=10)
        real = ledger.balances

        async def stale(session, account, owners):
            return {owner: amount + 1000 for owner, amount in (await real(session, account, owners)).items()}

        monkeypatch.setattr(ledger, "balances", stale)
        inserts = []
        made = await self._at_once(
            client,
            clock,
            [(rich, llm_job(), None), (poor, llm_job(), None), (rich, llm_job(), None)],
            inserts,
        )
        assert [type(m).__name__ for m in made] == ["Submitted", "InsufficientFunds", "Submitted"]
        assert len(inserts) == 1 + 3  # the batch (rolled back), then each alone
        assert (await _balance(client, rich))["held_halala"] == 2 * 45
        assert (await _balance(client, poor))["held_halala"] == 0
        history = (await client.get("/api/jobs/history", headers=poor.renter_headers)).json()
        assert history["total"] == 0

    async def test_the_same_idempotency_key_twice_in_one_batch_makes_one_job(self, client, admin, clock):
        await online_provider(client)
        renter = await funded_renter(client, admin)
        same, different = llm_job(), llm_job(duration_minutes=4)
        made = await self._at_once(
            client, clock, [(renter, body, "twins") for body in (same, same, different, same)]
        )
        assert isinstance(made[2], IdempotencyMismatch)
        assert [m.created for m in (made[0], made[1], made[3])] == [True, False, False]
        assert len({m.job.job_id for m in (made[0], made[1], made[3])}) == 1
        assert (await _balance(client, renter))["held_halala"] == 45
        again = await submit(client, renter, same, **{"Idempotency-Key": "twins"})
        assert again.json()["job"]["job_id"] == made[0].job.job_id


class TestContainerPolicy:
    async def test_only_approved_images_and_no_network_unless_allowed(self, client, admin, settings):
        await online_provider(client)
        renter = await funded_renter(client, admin)
        base = {"job_type": "custom_container", "duration_minutes": 1}
        unknown = await submit(
            client, renter, {**base, "params": {"script": "print(1)", "image_override": "evil/x:1"}}
        )
        assert unknown.status_code == 400 and "approved" in unknown.json()["error"]
        network = await submit(client, renter, {**base, "params": {"script": "print(1)", "network": True}})
        assert network.status_code == 400 and "network" in network.json()["error"]
        settings.jobs.allow_container_network = True
        allowed = await submit(
            client,
            renter,
            {**base, "params": {"script": "print(1)", "network": True, "image_override": "python:3.11-slim"}},
        )
        assert allowed.status_code == 201
