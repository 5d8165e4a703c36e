"""The real daemon against a real server, as separate processes, through HTTP and the WebSocket link only:
LLM text from the real small model, a script's DC1_RESULT_JSON, and the failures (unknown model, a script
past its limit, a daemon killed mid-job whose job moves to a second daemon)."""

from __future__ import annotations

import asyncio
import base64
import io
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from PIL import Image

from dcp.agent.runtimes.image import model_available as image_model_available
from tests.process.test_replicas import ADMIN, _database_for
from tests.process.test_serve import _start, _stop, _wait_ready
from tests.support.postgres import free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


class Market:
    def __init__(self, base: str, tmp_path) -> None:
        self.base, self.tmp_path = base, tmp_path
        self.http = httpx.AsyncClient(base_url=base, timeout=30)
        self.daemons: list[subprocess.Popen] = []
        self.env: dict[str, str] = {}  # the server's settings, for a second replica

    async def provider(self, name: str, *extra: str) -> tuple[dict, subprocess.Popen]:
        registered = (
            await self.http.post(
                "/api/providers/register",
                json={"name": name, "email": f"{name}@x.sa", "gpu_model": "CPU", "os": "linux"},
            )
        ).json()
        daemon = await asyncio.to_thread(self._spawn, name, registered["api_key"], list(extra))
        self.daemons.append(daemon)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # online once its first heartbeat landed
            me = (
                await self.http.get("/api/providers/me", headers={"x-provider-key": registered["api_key"]})
            ).json()
            if me["provider"]["is_online"]:
                return registered, daemon
            await asyncio.sleep(0.2)
        raise AssertionError("the daemon never came online")

    def _spawn(self, name: str, key: str, extra: list[str]) -> subprocess.Popen:
        with open(self.tmp_path / f"{name}.log", "w") as log:
            return subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dcp.cli",
                    "provider",
                    "run",
                    "--server",
                    self.base,
                    "--key",
                    key,
                    "--home",
                    str(self.tmp_path / name),
                    "--status-port",
                    "0",
                    *extra,
                ],
                stdout=subprocess.DEVNULL,
                stderr=log,
            )

    async def renter(self) -> dict:
        renter = (await self.http.post("/api/renters/register", json={"name": "r", "email": "r@x.sa"})).json()
        await self.http.post(
            f"/api/admin/renters/{renter['renter_id']}/credit",
            headers={"x-admin-token": ADMIN, "Idempotency-Key": "e2e"},
            json={"amount_halala": 100_000, "reason": "e2e"},
        )
        return renter

    async def finish(self, renter: dict, job_id: str, within: float = 90) -> dict:
        headers = {"x-renter-key": renter["api_key"]}
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            job = (await self.http.get(f"/api/jobs/{job_id}", headers=headers)).json()["job"]
            if job["status"] in ("completed", "failed", "cancelled"):
                return job
            await asyncio.sleep(0.2)
        raise AssertionError(f"{job_id} did not finish")

    async def close(self) -> None:
        for daemon in self.daemons:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    daemon.kill()
        await self.http.aclose()


@pytest.fixture
async def market(tmp_path, database_url):
    env = {
        "DCP_DATABASE_URL": await _database_for(database_url, tmp_path),
        "DCP_ADMIN_TOKEN": ADMIN,
        "DCP_SECRET_KEY": "k" * 48,
        "DCP_JOBS__LEASE_SECONDS": "6",
        "DCP_JOBS__SWEEP_INTERVAL_SECONDS": "0.5",
    }
    port = free_port()
    env["DCP_REPLICA_URL"] = f"http://127.0.0.1:{port}"
    server = _start(tmp_path, port, env)
    _wait_ready(f"http://127.0.0.1:{port}", server)
    market = Market(f"http://127.0.0.1:{port}", tmp_path)
    market.env = env
    yield market
    await market.close()
    output = _stop(server)
    assert "Traceback" not in output, output
    checked = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "dcp.cli", "admin", "check-ledger"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def _submit(market: Market, renter: dict, body: dict) -> dict:
    answer = await market.http.post(
        "/api/jobs/submit", headers={"x-renter-key": renter["api_key"]}, json=body
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["job"]


async def test_llm_and_script_jobs_on_the_real_daemon(market):
    await market.provider("alpha")
    renter = await market.renter()
    llm = await _submit(
        market,
        renter,
        {
            "job_type": "llm_inference",
            "duration_minutes": 2,
            "params": {
                "model": "gemma3-270m",
                "prompt": "What is the capital of France?",
                "max_tokens": 24,
                "temperature": 0,
            },
        },
    )
    done = await market.finish(renter, llm["job_id"])
    assert done["status"] == "completed", done
    output = (
        await market.http.get(
            f"/api/jobs/{llm['job_id']}/output", headers={"x-renter-key": renter["api_key"]}
        )
    ).json()
    assert output["result"]["response"].strip() and 0 < output["tokens_generated"] <= 24
    assert output["billing"]["actual_cost_halala"] >= 1

    script = 'import json\nprint("working")\nprint("DC1_RESULT_JSON:" + json.dumps({"answer": 42}))\n'
    job = await _submit(
        market, renter, {"job_type": "custom_container", "duration_minutes": 1, "params": {"script": script}}
    )
    assert (await market.finish(renter, job["job_id"]))["status"] == "completed"
    output = (
        await market.http.get(
            f"/api/jobs/{job['job_id']}/output", headers={"x-renter-key": renter["api_key"]}
        )
    ).json()
    assert output["result"]["result_json"] == {"answer": 42} and "working" in output["result"]["output"]


async def test_failures_are_clean_and_refunded_unless_the_job_s_own(market):
    await market.provider("beta")
    renter = await market.renter()
    unknown = await _submit(
        market,
        renter,
        {"job_type": "llm", "duration_minutes": 1, "params": {"model": "llama-70b", "prompt": "hi"}},
    )
    failed = await market.finish(renter, unknown["job_id"])
    assert failed["status"] == "failed" and "not available on this provider" in failed["error"]
    assert failed["refunded_halala"] == failed["cost_halala"]
    too_long = await _submit(  # 9,000 tokens for a model run with 4,096 of context
        market, renter, {"job_type": "llm", "duration_minutes": 1, "params": {"prompt": "hello " * 9000}}
    )
    refused = await market.finish(renter, too_long["job_id"])  # it "completed" with an empty answer
    assert refused["status"] == "failed" and "exceeds the available context size" in refused["error"]
    assert refused["refunded_halala"] == refused["cost_halala"]
    slow = await _submit(
        market,
        renter,
        {
            "job_type": "custom_container",
            "duration_minutes": 1,
            "max_duration_seconds": 10,
            "params": {"script": "import time\ntime.sleep(60)\n"},
        },
    )
    stopped = await market.finish(renter, slow["job_id"], within=60)
    assert stopped["status"] == "failed" and "limit" in stopped["error"]
    assert 0 < stopped["actual_cost_halala"] < stopped["cost_halala"]  # billed for the 10 s it ran
    offline = await _submit(
        market,
        renter,
        {
            "job_type": "custom_container",
            "duration_minutes": 1,
            "params": {"script": "import socket\nsocket.create_connection(('127.0.0.1', 9), timeout=2)\n"},
        },
    )
    blocked = await market.finish(renter, offline["job_id"])
    assert blocked["status"] == "failed" and "Network is unreachable" in blocked["error"]
    assert blocked["actual_cost_halala"] > 0  # the script itself failed: billed for the time it ran


async def test_a_second_daemon_on_the_same_home_is_refused_and_the_first_runs_on(market):
    provider, first = await market.provider("gamma")
    second = await asyncio.to_thread(market._spawn, "gamma", provider["api_key"], [])
    code = await asyncio.to_thread(second.wait, 60)
    assert code == 2 and "another daemon is running" in (market.tmp_path / "gamma.log").read_text()
    assert first.poll() is None  # its jobs were failed as cut off by a restart when the second started


async def test_daemon_killed_mid_job_moves_the_job_to_another(market):
    first, first_daemon = await market.provider("gamma")
    renter = await market.renter()
    job = await _submit(
        market,
        renter,
        {
            "job_type": "custom_container",
            "duration_minutes": 2,
            "params": {"script": "import time\ntime.sleep(4)\nprint('DC1_RESULT_JSON:{\"ok\": true}')\n"},
        },
    )
    headers = {"x-renter-key": renter["api_key"]}
    deadline = time.monotonic() + 30
    while (await market.http.get(f"/api/jobs/{job['job_id']}", headers=headers)).json()["job"][
        "status"
    ] != "running":
        assert time.monotonic() < deadline, "the job never started"
        await asyncio.sleep(0.1)
    first_daemon.send_signal(signal.SIGKILL)
    first_daemon.wait(timeout=10)
    await market.provider("delta")
    done = await market.finish(renter, job["job_id"], within=60)
    assert done["status"] == "completed" and done["attempts"] == 2
    assert done["provider_id"] != first["provider_id"]


async def test_vllm_serve_endpoint_answers_an_openai_client_through_the_link(market):
    import openai

    await market.provider("epsilon")
    renter = await market.renter()
    job = await _submit(
        market,
        renter,
        {
            "job_type": "vllm_serve",
            "duration_minutes": 2,
            "params": {"model": "gemma3-270m", "max_model_len": 2048},
        },
    )
    headers = {"x-renter-key": renter["api_key"]}
    endpoint_url, deadline = None, time.monotonic() + 60
    while endpoint_url is None and time.monotonic() < deadline:  # the seed's wait-for-endpoint loop
        output = (await market.http.get(f"/api/jobs/{job['job_id']}/output", headers=headers)).json()
        endpoint_url = output.get("result", {}).get("endpoint_url")
        await asyncio.sleep(0.2)
    assert endpoint_url.startswith(f"{market.base}/api/jobs/{job['job_id']}/endpoint/")
    client = openai.AsyncOpenAI(
        base_url=endpoint_url, api_key="not-needed"
    )  # as the seed: the URL is the key
    response = await client.chat.completions.create(
        model="gemma3-270m", messages=[{"role": "user", "content": "Name a color."}], max_tokens=12
    )
    assert response.choices[0].message.content.strip()
    streamed = []
    async for chunk in await client.completions.create(
        model="gemma3-270m", prompt="The sky is", max_tokens=8, stream=True
    ):
        streamed.append(chunk.choices[0].text if chunk.choices else "")
    assert "".join(streamed).strip()
    guessed = f"{market.base}/api/jobs/{job['job_id']}/endpoint/{'0' * 32}/v1"
    stranger = openai.AsyncOpenAI(base_url=guessed, api_key=renter["api_key"])
    with pytest.raises(openai.NotFoundError):
        await stranger.models.list()
    await client.close()
    await stranger.close()
    cancelled = await market.http.post(f"/api/jobs/{job['job_id']}/cancel", headers=headers)
    assert cancelled.json()["job"]["status"] == "cancelled"
    assert cancelled.json()["job"]["actual_cost_halala"] >= 1


@pytest.mark.skipif(not image_model_available(), reason="train it with scripts/train_tiny_diffusion.py")
async def test_image_job_returns_a_png_of_the_asked_size(market):
    await market.provider("zeta")
    renter = await market.renter()
    job = await _submit(
        market,
        renter,
        {
            "job_type": "image_generation",
            "duration_minutes": 2,
            "params": {"prompt": "a red square", "width": 96, "height": 64, "steps": 8, "seed": 3},
        },
    )
    done = await market.finish(renter, job["job_id"])
    assert done["status"] == "completed", done["error"]
    output = (
        await market.http.get(
            f"/api/jobs/{job['job_id']}/output", headers={"x-renter-key": renter["api_key"]}
        )
    ).json()
    image = Image.open(io.BytesIO(base64.b64decode(output["result"]["image_base64"])))
    assert image.format == "PNG" and image.size == (96, 64)
    assert output["result"]["steps"] == 8


async def _chat_once_the_pool_is_ready(client) -> None:
    """Wait for the pool (the engine loads, then the next heartbeat says ready); one chat with real text."""
    deadline = time.monotonic() + 60
    while not (await client.models.list()).data:
        assert time.monotonic() < deadline, "the pool never became ready"
        await asyncio.sleep(0.5)
    chat = await client.chat.completions.create(
        model="gemma3-270m",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        max_tokens=16,
    )
    assert chat.choices[0].message.content.strip() and chat.usage.completion_tokens > 0


async def test_openai_client_through_the_v1_gateway_with_the_real_model(market, tmp_path):
    """On the replica holding the daemon's link, then on a second replica of the same database, which relays
    each request to the first."""
    import openai

    await market.provider("eta", "--serve-pool")
    renter = await market.renter()
    client = openai.AsyncOpenAI(base_url=f"{market.base}/v1", api_key=renter["api_key"])
    await _chat_once_the_pool_is_ready(client)
    completion = await client.completions.create(model="gemma3-270m", prompt="One, two, three,", max_tokens=8)
    assert completion.choices[0].text
    pieces = []
    stream = await client.chat.completions.create(
        model="gemma3-270m",
        messages=[{"role": "user", "content": "Name a fruit."}],
        max_tokens=12,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = None
    async for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
        usage = chunk.usage or usage
    assert "".join(pieces).strip() and usage is not None and usage.completion_tokens > 0
    await client.close()

    port = free_port()
    (tmp_path / "second").mkdir()
    second = _start(tmp_path / "second", port, {**market.env, "DCP_REPLICA_URL": f"http://127.0.0.1:{port}"})
    try:
        _wait_ready(f"http://127.0.0.1:{port}", second)
        relayed = openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=renter["api_key"])
        await _chat_once_the_pool_is_ready(relayed)
        stream = await relayed.chat.completions.create(
            model="gemma3-270m",
            messages=[{"role": "user", "content": "Name a fruit."}],
            max_tokens=12,
            stream=True,
        )
        assert "".join(
            [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        ).strip()
        await relayed.close()
    finally:
        _stop(second)  # it settles what it billed as it stops

    # Usage is settled right after each response is sent (docs/design/gateway-money-path.md): wait for it.
    deadline = time.monotonic() + 10
    while True:
        usage = (
            await market.http.get("/api/renters/usage", headers={"x-renter-key": renter["api_key"]})
        ).json()
        if usage["total"] == 5 or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    failures = [row["error"] for row in usage["requests"] if row["status"] != "completed"]
    assert usage["total"] == 5 and not failures, failures
    assert all(row["cost_halala"] >= 1 and row["completion_tokens"] > 0 for row in usage["requests"])
