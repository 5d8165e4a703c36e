"""The GPU paths on a real GPU, with real vLLM and real weights: skipped where there is none (as on every
developer machine and CI here). docs/gpu.md says how to run them; they print the figures to record.

DCP_GPU_LLM_MODEL: a Hugging Face model folder for vLLM (e.g. Qwen/Qwen2.5-0.5B-Instruct, downloaded).
DCP_GPU_SD_MODEL: a Stable Diffusion or SDXL folder in diffusers format (e.g. stabilityai/sd-turbo).
"""

from __future__ import annotations

import base64
import io
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from dcp.agent.capabilities import VLLM_MODULE_COMMAND, detect, importable
from dcp.agent.config import AgentConfig
from dcp.agent.runtimes.image import ImageRuntime
from dcp.agent.runtimes.llm import LlamaServer, LlmRuntime
from dcp.agent.runtimes.vllm import Launch, VllmEngines, stream_completion
from dcp.agent.telemetry import read_gpus
from tests.support.recording_events import RecordingEvents

GPUS = read_gpus()
pytestmark = pytest.mark.skipif(not GPUS, reason="needs an NVIDIA GPU (NVML finds none)")


def _config(tmp_path: Path, **fields: object) -> AgentConfig:
    return AgentConfig(server="http://server", key="dc1-provider-x", home=tmp_path, **fields)


def _env_folder(name: str) -> Path:
    value = os.environ.get(name)
    if not value:
        pytest.skip(f"set {name} to a model folder")
    return Path(value)


def test_the_gpu_is_seen_by_nvml_torch_and_llama_cpp(tmp_path):
    found = detect(_config(tmp_path))
    print("capabilities:", found.describe())
    assert found.gpus[0]["gpu_vram_mib"] > 0 and found.gpus[0]["driver_version"]
    assert found.cuda, "torch does not see CUDA: install a CUDA build of torch (docs/gpu.md)"


@pytest.mark.skipif(not importable("vllm"), reason="vLLM is not installed")
async def test_vllm_loads_streams_and_frees_the_gpu():
    folder = _env_folder("DCP_GPU_LLM_MODEL")
    engines = VllmEngines(VLLM_MODULE_COMMAND, ready_seconds=900, grace_seconds=30, idle_seconds=0)
    used_before = read_gpus()[0]["vram_used_mib"]
    began = time.monotonic()
    async with engines.use(
        Launch(folder.name, folder, max_model_len=2048), keep_warm=False, note=print
    ) as vllm:
        loaded = time.monotonic()
        events = RecordingEvents()
        params = {"prompt": "Write one sentence about Riyadh.", "max_tokens": 128, "temperature": 0}
        outcome = await stream_completion(vllm, chat=True, params=params, events=events)
        generated = time.monotonic()
    tokens = outcome.tokens_generated or 0
    print(
        f"vLLM: load {loaded - began:.1f} s, {tokens} tokens at {tokens / (generated - loaded):.0f} tokens/s"
    )
    print("reply:", outcome.result["response"])
    assert tokens > 0 and len(events.token_texts) > 1
    assert read_gpus()[0]["vram_used_mib"] < used_before + 1024  # stopped: its memory is back


@pytest.mark.skipif(not importable("xllamacpp"), reason="xllamacpp is not installed")
async def test_llama_cpp_offloads_the_small_model_when_its_build_has_cuda(tmp_path):
    found = detect(_config(tmp_path))
    if not found.llama_gpu:
        pytest.skip("this xllamacpp build is CPU-only (the PyPI wheel); see docs/gpu.md for the CUDA one")
    server = LlamaServer(cache_dir=tmp_path, threads=4, context=2048, slots=1, gpu_backends=found.llama_gpu)
    runtime = LlmRuntime(server, capabilities=found)
    spec = {"params": {"model": "gemma3-270m", "prompt": "Name three colours.", "max_tokens": 64}}
    began = time.monotonic()
    outcome = await runtime.run(spec, RecordingEvents())
    seconds = time.monotonic() - began
    print(f"llama.cpp on {found.llama_gpu}: {outcome.tokens_generated} tokens in {seconds:.2f} s")
    assert outcome.tokens_generated


async def test_stable_diffusion_draws_on_the_gpu(tmp_path):
    folder = _env_folder("DCP_GPU_SD_MODEL")
    found = detect(_config(tmp_path, image_models_dir=folder.parent))
    assert found.cuda and folder.name in found.image_models
    runtime = ImageRuntime(capabilities=found, threads=4)
    spec = {
        "params": {
            "model": folder.name,
            "prompt": "a watercolour of the Riyadh skyline at dusk",
            "negative_prompt": "blurry",
            "width": 512,
            "height": 512,
            "steps": 20,
            "guidance_scale": 7.0,
            "seed": 1,
        }
    }
    await runtime.run({**spec, "params": {**spec["params"], "steps": 1}}, RecordingEvents())  # loads it
    events = RecordingEvents()
    began = time.monotonic()
    outcome = await runtime.run(spec, events)
    print(f"{folder.name}: 512x512, 20 steps in {time.monotonic() - began:.2f} s on {GPUS[0]['gpu_name']}")
    image = Image.open(io.BytesIO(base64.b64decode(outcome.result["image_base64"])))
    assert image.size == (512, 512) and events.progresses[-1] == 100 and len(events.progresses) == 20
