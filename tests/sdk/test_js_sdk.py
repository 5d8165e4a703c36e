"""The JavaScript SDK (dc1-renter-sdk): its node --test suite, run against a real server this test serves."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
from pathlib import Path

import httpx
import pytest

from dcp.kit.clock import ManualClock
from tests.support.daemon import running_daemon
from tests.support.factories import Account, funded_renter, heartbeat, online_provider
from tests.support.provider_client import TestProvider

SDK = Path(__file__).resolve().parents[2] / "sdk" / "js"
SUITE_TIMEOUT_SECONDS = 180
DAEMON_SUITE = "test/daemon/real-daemon.test.mjs"  # outside test/*.test.mjs: it needs a real daemon
IMAGE = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"not really pixels").decode()


@pytest.fixture
def node() -> str:
    found = shutil.which("node")
    assert found, "node is not on PATH: the JavaScript SDK's tests need Node.js 18 or later"
    installed = (SDK / "node_modules" / "typescript").is_dir()
    assert installed, "sdk/js has no node_modules: run npm ci --prefix sdk/js (scripts/test does)"
    return found


async def test_js_sdk_suite_passes_against_a_live_server(live, admin, clock, node):
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        served = await online_provider(http)
        small = {"gpu_model": "RTX 3070", "gpu_name": "NVIDIA RTX 3070", "gpu_vram_mib": 8192}
        idle = await online_provider(http, **small)  # under 16 GB: the README's examples pick the served one
        env = {
            "DCP_BASE_URL": live.url,
            "DCP_RENTER_KEY": (await funded_renter(http, admin)).key,
            "DCP_HISTORY_RENTER_KEY": (await funded_renter(http, admin)).key,
            "DCP_EXAMPLE_RENTER_KEY": (await funded_renter(http, admin)).key,
            "DCP_POOR_RENTER_KEY": (await funded_renter(http, admin, amount=1)).key,
            "DCP_PROVIDER_ID": str(served.id),
            "DCP_IDLE_PROVIDER_ID": str(idle.id),
        }
        provider = asyncio.create_task(_play_provider(http, clock, served, keep_live=[served, idle]))
        try:
            built, log = await _node(node, "scripts/build.mjs")
            assert built == 0, log
            returncode, report = await _node(node, "--test", "--test-reporter=tap", *_test_files(), env=env)
        finally:
            provider.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await provider
    assert returncode == 0, report
    counts = dict(re.findall(r"^# (pass|fail|skipped|todo|cancelled) (\d+)$", report, re.MULTILINE))
    assert counts["fail"] == counts["skipped"] == counts["cancelled"] == counts["todo"] == "0", report
    assert "# SKIP" not in report and int(counts["pass"]) >= 20, report  # a skipped suite counts no tests


async def test_js_sdk_runs_a_job_on_a_real_daemon(live, admin, node, tmp_path):
    async with httpx.AsyncClient(base_url=live.url, timeout=30) as http:
        renter = await funded_renter(http, admin)
    async with running_daemon(live.url, tmp_path) as provider:
        env = {"DCP_BASE_URL": live.url, "DCP_RENTER_KEY": renter.key, "DCP_PROVIDER_ID": str(provider.id)}
        returncode, report = await _node(node, "--test", "--test-reporter=tap", DAEMON_SUITE, env=env)
    assert returncode == 0, report
    assert "# pass 1" in report and "# SKIP" not in report, report


def _test_files() -> list[str]:
    files = sorted(str(path.relative_to(SDK)) for path in (SDK / "test").glob("*.test.mjs"))
    assert "test/live.test.mjs" in files
    return files


async def _node(node: str, *args: str, env: dict[str, str] | None = None) -> tuple[int | None, str]:
    """Runs node without blocking the event loop the live server shares with this test."""
    process = await asyncio.create_subprocess_exec(
        node,
        *args,
        cwd=SDK,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), timeout=SUITE_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        pytest.fail(f"node {' '.join(args)} ran past {SUITE_TIMEOUT_SECONDS} s:\n{output.decode()}")
    return process.returncode, output.decode()


async def _play_provider(
    http: httpx.AsyncClient, clock: ManualClock, served: Account, *, keep_live: list[Account]
) -> None:
    """The served provider: a prompt saying "please fail" fails; others finish after 20 s (text "Riyadh")."""
    daemon = TestProvider(http, served)
    while True:
        leased = await daemon.claim(wait=1)
        if leased is None:
            continue
        assert (await daemon.start(leased)).status_code == 200
        if "please fail" in leased.spec["params"]["prompt"]:
            answer = await daemon.result(leased, status="failed", error="CUDA out of memory")
        else:
            clock.advance(seconds=20)
            for provider in keep_live:  # server time moved: heartbeat so both stay live
                await heartbeat(http, provider)
            image = leased.spec["job_type"] == "image_generation"
            result = {"image_base64": IMAGE} if image else {"response": "Riyadh"}
            answer = await daemon.result(leased, result=result, tokens_generated=None if image else 3)
        assert answer.status_code == 200, answer.text
