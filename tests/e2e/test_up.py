"""``dcp up`` (the README's first command) runs the whole marketplace, and the seed's Python quickstart,
with its numbers filled in, and the README's OpenAI example get real completions from it; Ctrl-C stops
everything cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.support.postgres import free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def seed_quickstart(dc1_base: str, renter_key: str) -> tuple[str, int]:
    """The seed SDK guide's quickstart, as written there (with ``requests`` spelled ``httpx``)."""
    headers = {"x-renter-key": renter_key, "Content-Type": "application/json"}
    balance = httpx.get(f"{dc1_base}/api/renters/balance", headers=headers).json()
    assert float(balance["balance_sar"]) > 0
    providers = httpx.get(f"{dc1_base}/api/renters/available-providers").json()
    live = [p for p in providers["providers"] if p["is_live"]]
    provider_id = live[0]["id"]
    job_resp = httpx.post(
        f"{dc1_base}/api/jobs/submit",
        headers=headers,
        json={
            "provider_id": provider_id,
            "job_type": "llm_inference",
            "duration_minutes": 5,
            "params": {
                "model": "mistralai/Mistral-7B-Instruct-v0.2",
                "prompt": "Write a haiku about desert computing",
                "max_tokens": 64,
                "temperature": 0.8,
            },
        },
    )
    job = job_resp.json()["job"]
    job_id = job["job_id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status_resp = httpx.get(f"{dc1_base}/api/jobs/{job_id}", headers=headers).json()["job"]
        if status_resp["status"] in ("completed", "failed", "cancelled"):
            break
        time.sleep(1)
    assert status_resp["status"] == "completed", status_resp["error"]
    output = httpx.get(f"{dc1_base}/api/jobs/{job_id}/output", headers=headers).json()
    return output["result"]["response"], output["actual_cost_halala"]


def readme_openai_example(base: str, renter_key: str) -> str:
    """The README's OpenAI example, once the local provider's /v1 pool has announced its engine."""
    import openai

    deadline = time.monotonic() + 60
    headers = {"authorization": f"Bearer {renter_key}"}
    while not httpx.get(f"{base}/v1/models", headers=headers).json()["data"]:
        assert time.monotonic() < deadline, "the local provider never joined the /v1 pool"
        time.sleep(0.2)
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=renter_key)
    answer = client.chat.completions.create(
        model="gemma3-270m", messages=[{"role": "user", "content": "Hi"}], max_tokens=16
    )
    return answer.choices[0].message.content or ""


def test_dcp_up_serves_the_seed_quickstart(tmp_path):
    port = free_port()
    env = {**os.environ, "DCP_DATA_DIR": str(tmp_path / ".dcp")}
    up = subprocess.Popen(
        [sys.executable, "-m", "dcp.cli", "up", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        for line in up.stdout:
            lines.append(line)
            if line.startswith("DCP is up"):
                break
        assert any("DCP is up" in line for line in lines), "".join(lines)
        demo = json.loads((tmp_path / ".dcp" / "demo.json").read_text())
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not any(
            p["is_live"] for p in httpx.get(f"{base}/api/renters/available-providers").json()["providers"]
        ):
            assert time.monotonic() < deadline, "the local provider never came online"
            time.sleep(0.2)
        text, cost = seed_quickstart(base, demo["renter_key"])
        assert text.strip() and cost >= 1
        assert readme_openai_example(base, demo["renter_key"]).strip()
    finally:
        up.send_signal(signal.SIGINT)
        output, _ = up.communicate(timeout=60)
    assert up.returncode == 0, output
    assert "Traceback" not in output
