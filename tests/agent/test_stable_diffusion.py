"""The Stable Diffusion / SDXL path of the image runtime, run for real on the CPU with tiny random-weight
pipelines built here in diffusers format (the GPU is the only thing not here): the runtime finds the
folders, loads them with the device and precision the same function picks on a GPU, and draws."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image

from dcp.agent.capabilities import detect
from dcp.agent.config import AgentConfig
from dcp.agent.runtimes.base import JobFailed
from dcp.agent.runtimes.image import ImageRuntime
from dcp.agent.runtimes.stable_diffusion import placement
from tests.support.recording_events import RecordingEvents
from tests.support.tiny_sd import build_sd, build_sdxl

SD = "tiny/sd"
SDXL = "tiny/sdxl"


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> ImageRuntime:
    root = tmp_path_factory.mktemp("image-models")
    build_sd(root / SD)
    build_sdxl(root / SDXL)
    config = AgentConfig(
        server="http://server", key="dc1-provider-x", home=root / "home", image_models_dir=root
    )
    return ImageRuntime(capabilities=detect(config), threads=2)


def _spec(**params) -> dict:
    base = {"prompt": "a red cat", "width": 64, "height": 48, "steps": 3, "guidance_scale": 7.5, "seed": 7}
    return {"job_id": "job-1", "params": {**base, **params}}


def _png(outcome) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(outcome.result["image_base64"])))
    assert image.format == "PNG"
    return image


def test_the_folders_are_found_and_offered(runtime):
    assert runtime.models() == [SD, SDXL, "dcp-tiny-diffusion"]


@pytest.mark.parametrize("model", [SD, SDXL])
async def test_a_pipeline_draws_the_asked_size_with_progress_per_step(runtime, model):
    events = RecordingEvents()
    outcome = await runtime.run(_spec(model=model, steps=4, negative_prompt="blue"), events)
    assert _png(outcome).size == (64, 48)
    assert outcome.result | {"image_base64": ""} == {
        "image_base64": "",
        "format": "png",
        "width": 64,
        "height": 48,
        "steps": 4,
        "seed": 7,
        "model": model,
    }
    assert events.progresses == [25, 50, 75, 100]
    assert runtime.stable_diffusion.loaded is not None and runtime.stable_diffusion.loaded[0] == model


async def test_the_seed_and_the_prompts_decide_the_image(runtime):
    first = _png(await runtime.run(_spec(model=SD), RecordingEvents())).tobytes()
    again = _png(await runtime.run(_spec(model=SD), RecordingEvents())).tobytes()
    other_seed = _png(await runtime.run(_spec(model=SD, seed=8), RecordingEvents())).tobytes()
    negative = _png(
        await runtime.run(_spec(model=SD, negative_prompt="blue dog"), RecordingEvents())
    ).tobytes()
    assert first == again and first != other_seed and first != negative


async def test_a_cancel_stops_between_steps(runtime):
    events = RecordingEvents()
    events.cancel()
    with pytest.raises(JobFailed, match="stopped"):
        await runtime.run(_spec(model=SD, steps=20), events)
    assert events.progresses == [5]  # one step, then the pipeline was interrupted


async def test_an_absent_model_is_refused_before_any_work(runtime):
    absent = "stabilityai/stable-diffusion-xl-base-1.0"
    with pytest.raises(
        JobFailed, match=re.escape(f"Image model {absent!r} is not available on this provider")
    ):
        await runtime.run(_spec(model=absent), RecordingEvents())


def test_cuda_gets_half_precision_and_the_cpu_full():
    import torch

    assert placement(True) == ("cuda", torch.float16)
    assert placement(False) == ("cpu", torch.float32)
