"""Stable Diffusion and SDXL from the provider's diffusers weights: float16 on CUDA, float32 on the CPU."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dcp.agent.capabilities import Weights

log = logging.getLogger("dcp.agent.stable_diffusion")


def placement(cuda: bool) -> tuple[str, Any]:
    """Where a pipeline runs and in what precision: half precision is what SD weights are meant for on a
    GPU; on a CPU it is slow or unsupported, so the CPU gets float32."""
    import torch

    return ("cuda", torch.float16) if cuda else ("cpu", torch.float32)


@dataclass(frozen=True)
class Drawing:
    prompt: str
    negative_prompt: str | None
    width: int
    height: int
    steps: int
    guidance_scale: float
    seed: int


class StableDiffusion:
    """One pipeline loaded at a time (a GPU rarely holds two), swapped when a job asks for another model;
    jobs take turns on it."""

    def __init__(self, *, cuda: bool, threads: int) -> None:
        self.cuda, self.threads = cuda, threads
        self.loaded: tuple[str, Any] | None = None
        self._lock = asyncio.Lock()

    async def draw(self, weights: Weights, drawing: Drawing, progress: Callable[[int, int], bool]) -> bytes:
        """The PNG; ``progress(done, total)`` is called after each step and returns True to stop early."""
        async with self._lock:
            pipeline = await asyncio.to_thread(self._pipeline, weights)
            return await asyncio.to_thread(self._draw, pipeline, drawing, progress)

    def _pipeline(self, weights: Weights) -> Any:
        if self.loaded is not None and self.loaded[0] == weights.name:
            return self.loaded[1]
        self.loaded = None  # the old one goes before the new one loads
        import torch
        from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
        from diffusers.utils import is_accelerate_available

        device, dtype = placement(self.cuda)
        if device == "cuda":
            torch.cuda.empty_cache()
        else:
            torch.set_num_threads(self.threads)
        kind = (
            StableDiffusionXLPipeline
            if weights.kind == "StableDiffusionXLPipeline"
            else StableDiffusionPipeline
        )
        options: dict[str, Any] = {"dtype": dtype, "low_cpu_mem_usage": is_accelerate_available()}
        if device == "cuda" and any(weights.path.glob("unet/*.fp16.safetensors")):
            options["variant"] = "fp16"  # half the bytes to read where the folder has them
        pipeline = kind.from_pretrained(weights.path, **options).to(device)
        pipeline.set_progress_bar_config(disable=True)
        log.info("loaded %s (%s) on %s as %s", weights.name, weights.kind, device, dtype)
        self.loaded = (weights.name, pipeline)
        return pipeline

    def _draw(self, pipeline: Any, drawing: Drawing, progress: Callable[[int, int], bool]) -> bytes:
        import torch

        device, _ = placement(self.cuda)

        def on_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            if progress(step + 1, drawing.steps):
                pipe._interrupt = True  # diffusers' documented way to stop between steps
            return tensors

        image = pipeline(
            prompt=drawing.prompt,
            negative_prompt=drawing.negative_prompt or None,
            width=drawing.width,
            height=drawing.height,
            num_inference_steps=drawing.steps,
            guidance_scale=drawing.guidance_scale,
            generator=torch.Generator(device=device).manual_seed(drawing.seed),
            callback_on_step_end=on_step,
        ).images[0]
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()

    async def close(self) -> None:
        self.loaded = None
