"""Each job type's life through HTTP (an in-test provider stands in for the daemon), and the figures that
jobs feed: output shapes, the dashboard's job stats, recent jobs, reliability."""

from __future__ import annotations

import base64
import re

from tests.support.factories import funded_renter, online_provider, submit
from tests.support.provider_client import TestProvider

PNG_1x1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()


async def _run(client, renter, daemon, body, result, clock, seconds=20):
    job = (await submit(client, renter, body)).json()["job"]
    leased = await daemon.claim()
    assert leased.job_id == job["job_id"]
    await daemon.start(leased)
    clock.advance(seconds=seconds)
    answer = await daemon.result(leased, result=result)
    assert answer.status_code == 200, answer.text
    return (await client.get(f"/api/jobs/{job['job_id']}/output", headers=renter.renter_headers)).json()


async def test_image_job_output(client, admin, clock):
    daemon = TestProvider(client, await online_provider(client))
    renter = await funded_renter(client, admin)
    body = {
        "job_type": "image_generation",
        "duration_minutes": 10,
        "params": {"prompt": "A futuristic mosque with neon lights", "steps": 20, "width": 64, "height": 64},
    }
    output = await _run(
        client,
        renter,
        daemon,
        body,
        {"image_base64": PNG_1x1, "width": 64, "height": 64, "format": "png"},
        clock,
    )
    assert output["type"] == "image" and output["result"]["image_base64"] == PNG_1x1
    assert output["billing"]["actual_cost_halala"] == 7  # 20 s at 20 halala/minute, rounded up


async def test_custom_container_output(client, admin, clock):
    daemon = TestProvider(client, await online_provider(client))
    renter = await funded_renter(client, admin)
    body = {
        "job_type": "custom_container",
        "duration_minutes": 5,
        "params": {
            "script": 'print("DC1_RESULT_JSON:" + "{}")',
            "image_override": "dc1/general-worker:latest",
        },
    }
    output = await _run(
        client,
        renter,
        daemon,
        body,
        {"output": "hello\n", "result_json": {"matmul_shape": [2, 2]}, "exit_code": 0},
        clock,
    )
    assert output["type"] == "container" and output["result"]["result_json"] == {"matmul_shape": [2, 2]}


async def test_vllm_serve_publishes_its_endpoint_while_running(client, admin, clock):
    daemon = TestProvider(client, await online_provider(client))
    renter = await funded_renter(client, admin)
    body = {
        "job_type": "vllm_serve",
        "duration_minutes": 30,
        "params": {"model": "gemma3-270m", "max_model_len": 2048, "dtype": "float16"},
    }
    job = (await submit(client, renter, body)).json()["job"]
    leased = await daemon.claim()
    await daemon.start(leased)
    url = f"/api/jobs/{job['job_id']}/output"
    assert (await client.get(url, headers=renter.renter_headers)).status_code == 202
    await daemon.events(leased, endpoint_url="https://provider.example/v1")  # only a sign that it serves
    ready = await client.get(url, headers=renter.renter_headers)
    assert ready.status_code == 200 and ready.json()["status"] == "running"
    # The server names the URL (a provider cannot send the renter, and their client's key, elsewhere), and
    # its access token is the credential: no API key needed.
    endpoint = ready.json()["result"]["endpoint_url"]
    path = re.fullmatch(rf"http://[^/]+(/api/jobs/{job['job_id']}/endpoint/[0-9a-f]{{32}}/v1)", endpoint)
    assert path is not None, endpoint
    served = await client.get(f"{path[1]}/models", headers={"authorization": "Bearer not-needed"})
    assert served.status_code == 502 and "not connected" in served.json()["error"]  # past the token check
    guessed = path[1].replace(endpoint.split("/")[-2], "0" * 32)
    assert (await client.get(f"{guessed}/models", headers=renter.renter_headers)).status_code == 404
    clock.advance(minutes=10)
    cancelled = await client.post(f"/api/jobs/{job['job_id']}/cancel", headers=renter.renter_headers)
    assert cancelled.json()["job"]["actual_cost_halala"] == 200  # ten minutes served at 20 halala/minute


async def test_dashboard_me_and_reliability_follow_jobs(client, admin, clock):
    provider = await online_provider(client)
    daemon = TestProvider(client, provider)
    renter = await funded_renter(client, admin)
    body = {"job_type": "llm", "duration_minutes": 1, "params": {"prompt": "hi"}}
    await _run(client, renter, daemon, body, {"response": "hello"}, clock, seconds=60)
    failing = (await submit(client, renter, body)).json()["job"]
    leased = await daemon.claim()
    await daemon.result(leased, status="failed", error="boom")
    await submit(client, renter, body)  # stays pending
    stats = (await client.get("/api/admin/dashboard", headers=admin)).json()["stats"]
    assert (stats["total_jobs"], stats["completed_jobs"], stats["failed_jobs"], stats["active_jobs"]) == (
        3,
        1,
        1,
        1,
    )
    assert stats["today_jobs"] == 3
    assert stats["total_revenue_halala"] == 15 and stats["total_dc1_fees_halala"] == 4
    me = (await client.get("/api/renters/me", headers=renter.renter_headers)).json()
    assert me["renter"]["total_jobs"] == 3 and len(me["recent_jobs"]) == 3
    assert me["recent_jobs"][1]["job_id"] == failing["job_id"]
    provider_me = (await client.get("/api/providers/me", headers=provider.provider_headers)).json()
    assert provider_me["provider"]["total_jobs"] == 3 and provider_me["provider"]["earnings_halala"] == 11
    market = (await client.get("/api/renters/available-providers")).json()["providers"][0]
    assert market["reliability_pct"] == 100
