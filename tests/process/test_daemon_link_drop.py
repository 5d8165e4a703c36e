"""Kill a real daemon while its LLM job streams tokens: the link drops mid-stream, the lease runs out, and
with no retry budget left the job fails with a full refund, which the renter's live stream reports. (With a
budget the job moves to another daemon: tests/e2e/test_daemon.py, test_daemon_killed_mid_job_moves_...)"""

from __future__ import annotations

import asyncio
import json
import signal

from tests.e2e.test_daemon import Market
from tests.process.server_process import ServerProcess, assert_money_kept

PUT_IN = 100_000  # what Market.renter credits
STORY = {
    "job_type": "llm_inference",
    "duration_minutes": 2,
    "params": {
        "model": "gemma3-270m",
        "prompt": "Tell a long story about a caravan crossing the Empty Quarter.",
        "max_tokens": 400,
        "temperature": 0,
    },
}


async def _follow_and_kill(market: Market, renter: dict, job_id: str, daemon) -> list[tuple[str, dict]]:
    """Read the job's live events; SIGKILL the daemon at the first tokens; return every event to the end."""
    seen: list[tuple[str, dict]] = []
    headers = {"x-renter-key": renter["api_key"]}
    async with market.http.stream("GET", f"/api/jobs/{job_id}/events", headers=headers) as stream:
        kind = ""
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                seen.append((kind, json.loads(line.removeprefix("data: "))))
                if kind == "tokens" and daemon.poll() is None:
                    daemon.send_signal(signal.SIGKILL)
                if kind == "done":
                    return seen
    return seen


async def test_daemon_killed_mid_stream_fails_the_job_with_a_refund(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'dcp.db'}"
    server = ServerProcess(
        tmp_path,
        url,
        DCP_JOBS__LEASE_SECONDS="15",  # longer than loading the model, which renews no lease
        DCP_JOBS__SWEEP_INTERVAL_SECONDS="0.5",
        DCP_JOBS__MAX_RETRIES="0",
    )
    await server.start()
    market = Market(server.base, tmp_path)
    try:
        _, daemon = await market.provider("streamer")
        renter = await market.renter()
        submitted = await market.http.post(
            "/api/jobs/submit", headers={"x-renter-key": renter["api_key"]}, json=STORY
        )
        job_id = submitted.json()["job"]["job_id"]
        seen = await asyncio.wait_for(_follow_and_kill(market, renter, job_id, daemon), timeout=90)
        assert any(kind == "tokens" for kind, _ in seen), f"the job ended before streaming: {seen}"
        assert daemon.wait(timeout=10) == -signal.SIGKILL
        job = await market.finish(renter, job_id, within=30)
    finally:
        await market.close()
        output = await server.stop()
    assert seen[-1] == ("done", {"status": "failed"})
    assert job["status"] == "failed" and "stopped responding" in job["error"], job
    assert job["refunded_halala"] == job["cost_halala"] > 0
    assert "Traceback" not in output, output
    await assert_money_kept(url, put_in=PUT_IN)
