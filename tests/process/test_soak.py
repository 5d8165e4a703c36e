"""A few seconds of the soak (bench/soak.py): mixed traffic with daemon deaths, then no 5xx, no open job,
a sound ledger and not a halala made or lost. The real run is `python -m bench.soak --minutes 10`."""

from __future__ import annotations

from bench.soak import Plan, run


async def test_a_short_soak_keeps_the_ledger():
    plan = Plan(minutes=0.1, renters=4, providers=3, mean_life_seconds=2, lease_seconds=5)
    summary = (await run(plan))["summary"]
    assert summary["server_errors"] == 0 and summary["transport_errors"] == {}, summary
    assert summary["daemon_deaths"] > 0 and summary["jobs_open_after_drain"] == 0, summary
    assert summary["ledger_problems"] == [] and summary["money_created_or_lost_halala"] == 0, summary
    assert summary["server_tracebacks"] == 0
    assert summary["by_route"]["POST /v1/chat/completions"].get("200", 0) > 0, summary["by_route"]
    assert summary["by_route"]["POST /api/jobs/submit"].get("201", 0) > 0, summary["by_route"]
