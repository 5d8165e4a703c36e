"""The daemon's GPU paths, end to end through the real server and the real daemon process, with stand-ins
only for what this machine lacks: vLLM (tests/support/vllm_stand_in.py, set as the daemon's vllm_command)
and the GPU (Stable Diffusion runs its real code path on the CPU with tiny random weights)."""

from __future__ import annotations

import base64
import io
import json
import sys
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e import test_daemon
from tests.e2e.test_daemon import Market, _submit
from tests.support.polling import until
from tests.support.tiny_sd import build_sd

market = test_daemon.market  # the same fixture: a server process and daemons started as separate processes

STAND_IN = [sys.executable, str(Path(__file__).parents[1] / "support" / "vllm_stand_in.py")]
CHAT_MODEL = "acme/tiny-chat"

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def database_url() -> str:
    """SQLite only: these tests are about the daemon's engines; the server's side of the same protocol runs
    on both databases in test_daemon.py."""
    return "sqlite"


def llm_folder(root: Path, name: str, *, chat: bool = False, **behaviour: object) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    if chat:
        (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    (folder / "stand_in.json").write_text(json.dumps(behaviour))
    return folder


def lifecycle(folder: Path) -> list[str]:
    path = folder / "lifecycle.log"
    return [line.split(" ", 1)[1] for line in path.read_text().splitlines()] if path.exists() else []


async def gpu_provider(market: Market, name: str, models: Path, *extra: str, **config: object) -> None:
    """A daemon whose config points vllm_command at the stand-in and the model folders at ``models``."""
    home = market.tmp_path / name
    home.mkdir()
    settings = {
        "vllm_command": STAND_IN,
        "llm_models_dir": str(models / "llm"),
        "image_models_dir": str(models / "image"),
        "vllm_ready_seconds": 20,
        "vllm_stop_grace_seconds": 5,
        **config,
    }
    (home / "config.json").write_text(json.dumps(settings))
    await market.provider(name, *extra)


async def output(market: Market, renter: dict, job_id: str) -> dict:
    answer = await market.http.get(f"/api/jobs/{job_id}/output", headers={"x-renter-key": renter["api_key"]})
    return answer.json()


async def test_vllm_serve_and_llm_jobs_run_on_vllm(market, tmp_path):
    import openai

    chat = llm_folder(tmp_path / "models" / "llm", CHAT_MODEL, chat=True)
    await gpu_provider(market, "gpu-a", tmp_path / "models")
    renter = await market.renter()
    job = await _submit(
        market,
        renter,
        {
            "job_type": "vllm_serve",
            "duration_minutes": 2,
            "params": {"model": CHAT_MODEL, "max_model_len": 2048, "dtype": "float16"},
        },
    )

    async def endpoint_ready() -> bool:
        return bool((await output(market, renter, job["job_id"])).get("result", {}).get("endpoint_url"))

    await until(endpoint_ready, within=30, what="the endpoint")
    argv = json.loads(lifecycle(chat)[0].removeprefix("argv "))
    assert argv[argv.index("--max-model-len") + 1] == "2048" and argv[argv.index("--dtype") + 1] == "float16"
    endpoint_url = (await output(market, renter, job["job_id"]))["result"]["endpoint_url"]
    client = openai.AsyncOpenAI(base_url=endpoint_url, api_key="not-needed")
    assert [model.id for model in (await client.models.list()).data] == [CHAT_MODEL]
    answer = await client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Name a color."}], max_tokens=12
    )
    assert answer.choices[0].message.content == f"stand-in reply from {CHAT_MODEL} to: Name a color. "
    streamed = [
        chunk.choices[0].text
        async for chunk in await client.completions.create(
            model=CHAT_MODEL, prompt="The sky is", max_tokens=8, stream=True
        )
        if chunk.choices
    ]
    assert "".join(streamed) == f"stand-in reply from {CHAT_MODEL} to: The sky is "
    await client.close()
    cancelled = await market.http.post(
        f"/api/jobs/{job['job_id']}/cancel", headers={"x-renter-key": renter["api_key"]}
    )
    assert cancelled.json()["job"]["status"] == "cancelled"

    async def stopped() -> bool:  # the job's end stops vLLM: SIGTERM, and it exits
        return lifecycle(chat)[-2:] == ["sigterm", "exit 0"]

    await until(stopped, within=30, what="vLLM's stop")

    llm = await _submit(
        market,
        renter,
        {
            "job_type": "llm_inference",
            "duration_minutes": 2,
            "params": {"model": CHAT_MODEL, "prompt": "What is the capital of France?", "max_tokens": 9},
        },
    )
    done = await market.finish(renter, llm["job_id"])
    assert done["status"] == "completed", done
    result = await output(market, renter, llm["job_id"])
    assert result["result"]["response"] == f"stand-in reply from {CHAT_MODEL} to: What is the capital"
    assert result["tokens_generated"] == 9 and result["result"]["model"] == CHAT_MODEL
    assert "request /v1/chat/completions stream=True" in lifecycle(chat)  # sent as chat: it has a template

    unknown = await _submit(
        market,
        renter,
        {
            "job_type": "llm_inference",
            "duration_minutes": 1,
            "params": {"model": "meta/llama-70b", "prompt": "hi"},
        },
    )
    refused = await market.finish(renter, unknown["job_id"])
    assert refused["status"] == "failed" and refused["refunded_halala"] == refused["cost_halala"]
    assert f"'meta/llama-70b' is not available on this provider (it serves: {CHAT_MODEL}" in refused["error"]


async def test_a_vllm_that_never_loads_or_dies_fails_the_job_and_refunds_it(market, tmp_path):
    llm_folder(tmp_path / "models" / "llm", "acme/never-ready", never_ready=True)
    dies = llm_folder(tmp_path / "models" / "llm", "acme/dies", exit_after_ready=1.0)
    await gpu_provider(market, "gpu-b", tmp_path / "models", vllm_ready_seconds=3)
    renter = await market.renter()
    never = await _submit(
        market,
        renter,
        {"job_type": "vllm_serve", "duration_minutes": 1, "params": {"model": "acme/never-ready"}},
    )
    failed = await market.finish(renter, never["job_id"], within=60)
    assert failed["status"] == "failed" and "vLLM did not load acme/never-ready within 3 s" in failed["error"]
    assert failed["refunded_halala"] == failed["cost_halala"]

    crashing = await _submit(
        market, renter, {"job_type": "vllm_serve", "duration_minutes": 1, "params": {"model": "acme/dies"}}
    )
    crashed = await market.finish(renter, crashing["job_id"], within=60)
    assert crashed["status"] == "failed", crashed
    assert "vLLM exited with code 1 while serving acme/dies" in crashed["error"]
    assert crashed["refunded_halala"] == crashed["cost_halala"] and "crash" in lifecycle(dies)


async def test_an_image_job_runs_stable_diffusion_from_the_providers_weights(market, tmp_path):
    build_sd(tmp_path / "models" / "image" / "acme" / "tiny-sd")
    await gpu_provider(market, "gpu-c", tmp_path / "models")
    renter = await market.renter()
    job = await _submit(
        market,
        renter,
        {
            "job_type": "image_generation",
            "duration_minutes": 2,
            "params": {
                "model": "acme/tiny-sd",
                "prompt": "a red cat",
                "negative_prompt": "blue",
                "width": 96,
                "height": 64,
                "steps": 5,
                "guidance_scale": 6.0,
                "seed": 11,
            },
        },
    )
    done = await market.finish(renter, job["job_id"], within=120)
    assert done["status"] == "completed", done["error"]
    assert done["progress"] == 100
    result = (await output(market, renter, job["job_id"]))["result"]
    image = Image.open(io.BytesIO(base64.b64decode(result["image_base64"])))
    assert image.format == "PNG" and image.size == (96, 64)
    assert result["steps"] == 5 and result["seed"] == 11 and result["model"] == "acme/tiny-sd"


async def test_the_v1_pool_serves_a_vllm_model(market, tmp_path):
    import openai

    llm_folder(tmp_path / "models" / "llm", CHAT_MODEL, chat=True)
    await gpu_provider(market, "gpu-d", tmp_path / "models", "--serve-pool", heartbeat_seconds=0.5)
    renter = await market.renter()
    client = openai.AsyncOpenAI(base_url=f"{market.base}/v1", api_key=renter["api_key"])

    async def listed() -> bool:  # vLLM loads, then the next heartbeat says the pool is ready
        return [model.id for model in (await client.models.list()).data] == [CHAT_MODEL]

    await until(listed, within=60, what="the pool's model")
    chat = await client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": "Hello there"}], max_tokens=8
    )
    reply = chat.choices[0].message.content
    assert reply == f"stand-in reply from {CHAT_MODEL} to: Hello there "
    assert chat.usage.completion_tokens == len(reply.split())
    await client.close()
