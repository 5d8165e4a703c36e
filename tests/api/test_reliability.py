"""Reliability: the online share of the last 30 days and the share of leased jobs finished; telemetry
samples are pruned after their retention while uptime sums stay."""

from __future__ import annotations

from dcp.jobs.sweeper import sweep_once
from tests.support.factories import heartbeat, register_provider


async def _market(client):
    return (await client.get("/api/renters/available-providers")).json()["providers"][0]


async def test_uptime_gaps_lower_reliability(client, clock):
    provider = await register_provider(client)
    await heartbeat(client, provider)
    assert (await _market(client))["reliability_pct"] == 100
    for _ in range(120):  # one hour online, a heartbeat every 30 s
        clock.advance(seconds=30)
        await heartbeat(client, provider)
    assert (await _market(client))["reliability_pct"] == 100
    clock.advance(hours=1)  # one hour offline
    await heartbeat(client, provider)
    reliability = (await _market(client))["reliability_pct"]
    assert 74 <= reliability <= 76  # half of the hours online: 50 * 0.5 + 50 (no job lost)


async def test_old_samples_are_pruned(client, clock):
    provider = await register_provider(client)
    await heartbeat(client, provider)
    clock.advance(days=8)
    await heartbeat(client, provider)
    app = client._transport.app
    report = await sweep_once(app.state.db, settings=app.state.settings, now=clock.now(), hub=app.state.hub)
    assert report.pruned == 1
