"""Heartbeats written together: concurrent beats share a transaction, and each is written and credited as
if it came alone."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from dcp.kit import keys
from dcp.models import Provider, ProviderHeartbeat, ProviderUptime
from dcp.providers.heartbeats import Beat, HeartbeatWriter, ProviderGone, prepare
from dcp.providers.schemas import Heartbeat
from tests.conftest import SECRET
from tests.support.factories import Account, heartbeat, register_provider

BEAT = Heartbeat.model_validate(
    {
        "gpu_status": {"gpu_name": "NVIDIA RTX 4090", "gpu_util_pct": 40, "daemon_version": "0.1.0"},
        "provider_hostname": "node",
        "cached_models": ["gemma3-270m", "gemma3-270m"],
        "slots": 2,
    }
)


class Counting(HeartbeatWriter):
    """The writer, noting the size of every batch it writes."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.batches: list[int] = []

    async def _write(self, session, items):
        self.batches.append(len(items))
        return await super()._write(session, items)


@pytest.fixture
def writer(client, database, settings) -> Counting:
    return Counting(database, settings)


def _key(provider: Account) -> str:
    """What the batch finds a provider by: its key's digest."""
    return keys.digest(provider.key, secret=SECRET.encode())


async def _uptime(database, provider_id: int) -> int:
    async with database.reader() as session:
        found = await session.execute(
            select(func.coalesce(func.sum(ProviderUptime.seconds), 0)).where(
                ProviderUptime.provider_id == provider_id
            )
        )
        return int(found.scalar_one())


async def _samples(database) -> int:
    async with database.reader() as session:
        return int((await session.execute(select(func.count()).select_from(ProviderHeartbeat))).scalar_one())


async def test_concurrent_heartbeats_share_commits_and_are_all_written(client, writer, database, clock):
    providers = [await register_provider(client) for _ in range(20)]
    for provider in providers:  # a first beat each, one at a time; uptime counts from there
        await writer.record(_key(provider), BEAT, now=clock.now())
    writer.batches.clear()
    later = clock.now() + timedelta(seconds=30)
    answers = await asyncio.gather(*(writer.record(_key(p), BEAT, now=later) for p in providers))
    assert len(writer.batches) < len(providers) and sum(writer.batches) == len(providers)
    assert {(a.status, a.approved, a.message) for a in answers} == {("online", True, "Heartbeat received")}
    assert await _samples(database) == 2 * len(providers)
    assert [await _uptime(database, p.id) for p in providers] == [30] * len(providers)  # credited once each
    async with database.reader() as session:
        rows = (await session.execute(select(Provider).order_by(Provider.id))).scalars().all()
    assert {(r.last_heartbeat_at, r.first_heartbeat_at, r.slots) for r in rows} == {(later, clock.now(), 2)}
    assert {tuple(r.cached_models) for r in rows} == {("gemma3-270m",)}


async def test_a_small_batch_waits_for_other_beats_until_enough_came(client, database, settings, clock):
    settings.heartbeat_batch_wait_seconds = 60
    writer = Counting(database, settings)
    providers = [await register_provider(client) for _ in range(32)]
    early = [asyncio.create_task(writer.record(_key(p), BEAT, now=clock.now())) for p in providers[:5]]
    for _ in range(20):
        await asyncio.sleep(0)
    assert writer.batches == [] and not any(task.done() for task in early)  # held for company
    rest = [writer.record(_key(p), BEAT, now=clock.now()) for p in providers[5:]]
    await asyncio.wait_for(asyncio.gather(*early, *rest), timeout=10)  # the 32nd opened the gate
    assert writer.batches == [32]


async def test_two_beats_of_one_provider_in_a_batch_credit_in_order(client, writer, database, clock):
    provider = await register_provider(client)
    start = clock.now()
    key = _key(provider)
    await writer.record(key, BEAT, now=start)
    await asyncio.gather(
        writer.record(key, BEAT, now=start + timedelta(seconds=30)),
        writer.record(key, BEAT, now=start + timedelta(seconds=40)),
        writer.record(key, BEAT, now=start + timedelta(seconds=500)),  # a gap: the threshold at most
    )
    assert await _uptime(database, provider.id) == 30 + 10 + 90


async def test_a_beat_that_cannot_be_written_fails_alone(client, writer, database, clock):
    providers = [await register_provider(client) for _ in range(3)]
    good = prepare(BEAT, now=clock.now())
    broken = Misfiled(good.now, good.provider_row, good.sample_row, good.cached_models, _key(providers[0]))
    results = await asyncio.gather(
        writer.record(_key(providers[1]), BEAT, now=clock.now()),
        writer.record("0" * 64, BEAT, now=clock.now()),  # a key no provider holds (any more)
        _raw(writer, broken),
        writer.record(_key(providers[2]), BEAT, now=clock.now()),
        return_exceptions=True,
    )
    assert isinstance(results[1], ProviderGone) and isinstance(results[2], Exception)
    assert results[0].approved and results[3].approved
    assert await _samples(database) == 2  # the two good beats


async def _raw(writer: HeartbeatWriter, item: Beat) -> None:
    await writer._group.write(item)


class Misfiled(Beat):
    """A beat whose sample names no provider: the batch's INSERT fails."""

    __slots__ = ()

    def resolved(self, provider_id, approval_status, paused):
        super().resolved(provider_id, approval_status, paused)
        self.sample_row["provider_id"] = 999_999


async def test_a_beat_without_slots_keeps_them_and_serving_is_replaced(client, database):
    provider = await register_provider(client)
    headers = provider.provider_headers
    serving = {"models": ["m", "m"], "ready": True, "concurrency": 4, "context_length": 8192}
    await client.post("/api/providers/heartbeat", headers=headers, json={"slots": 3, "serving": serving})
    assert (await heartbeat(client, provider)).status_code == 200  # no slots, no serving
    async with database.reader() as session:
        row = await session.get(Provider, provider.id)
    assert row is not None
    assert (row.slots, row.serving_models, row.serving_ready, row.serving_concurrency) == (3, [], False, 1)


async def test_the_answer_reports_a_suspension_at_once(client, admin):
    provider = await register_provider(client)
    assert (await heartbeat(client, provider)).json()["status"] == "online"
    await client.post(f"/api/admin/providers/{provider.id}/suspend", headers=admin)
    body = (await heartbeat(client, provider)).json()
    assert (body["status"], body["approved"]) == ("suspended", False)
    await client.post("/api/providers/pause", headers=provider.provider_headers)
    await client.post(f"/api/admin/providers/{provider.id}/approve", headers=admin)
    assert (await heartbeat(client, provider)).json()["status"] == "paused"
