"""image_generation: a diffusers pipeline. On CPU, DCP's own tiny class-conditional diffusion model.

The model (``tiny_diffusion/``, trained by ``scripts/train_tiny_diffusion.py``) draws a coloured disc or
square on a soft background; the first colour word in the prompt picks the colour (random otherwise). It is
fully convolutional, so any width and height that are multiples of 8 work, and it honours ``steps`` (DDIM)
and ``seed``. Stable Diffusion / SDXL (``stable_diffusion.py``) serve the model folders a provider has.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import io
import random
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcp.agent.runtimes.base import Events, JobFailed, RunResult
from dcp.agent.runtimes.stable_diffusion import Drawing, StableDiffusion

if TYPE_CHECKING:
    from dcp.agent.capabilities import Capabilities

MODEL_ID = "dcp-tiny-diffusion"
MODEL_DIR = Path(__file__).parent / "tiny_diffusion"
COLORS: list[tuple[str, tuple[int, int, int]]] = [
    ("red", (220, 40, 40)),
    ("green", (40, 180, 60)),
    ("blue", (40, 80, 220)),
    ("yellow", (235, 210, 40)),
    ("purple", (140, 60, 190)),
    ("orange", (240, 140, 30)),
    ("white", (240, 240, 240)),
    ("black", (15, 15, 15)),
]
_WORDS = {name: index for index, (name, _) in enumerate(COLORS)} | {
    "أحمر": 0,
    "أخضر": 1,
    "أزرق": 2,
    "أصفر": 3,
    "بنفسجي": 4,
    "برتقالي": 5,
    "أبيض": 6,
    "أسود": 7,
}


def new_unet() -> Any:
    """The architecture, shared by the training script and the runtime."""
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(32, 64, 64),
        down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "UpBlock2D", "UpBlock2D"),
        num_class_embeds=len(COLORS),
    )


def weights_present() -> bool:
    return (MODEL_DIR / "config.json").exists()


def model_available() -> bool:
    return weights_present() and all(importlib.util.find_spec(name) for name in ("diffusers", "torch"))


def colour_of(prompt: str, rng: random.Random) -> int:
    for word in re.findall(r"\w+", prompt.lower()):
        if word in _WORDS:
            return _WORDS[word]
    return rng.randrange(len(COLORS))


def _drawing(params: dict[str, Any]) -> Drawing:
    seed = params.get("seed")
    return Drawing(
        prompt=str(params["prompt"]),
        negative_prompt=params.get("negative_prompt"),
        width=int(params["width"]),
        height=int(params["height"]),
        steps=int(params["steps"]),
        guidance_scale=float(params.get("guidance_scale", 7.5)),
        seed=int(seed) if seed is not None else random.SystemRandom().randrange(2**31),
    )


class ImageRuntime:
    job_type = "image_generation"

    def __init__(self, *, capabilities: Capabilities, threads: int, any_model: bool = False) -> None:
        self.capabilities, self.threads, self.any_model = capabilities, threads, any_model
        self.stable_diffusion = StableDiffusion(cuda=capabilities.cuda, threads=threads)
        self._unet: Any = None
        self._lock = asyncio.Lock()

    def models(self) -> list[str]:
        return self.capabilities.image_names()

    async def run(self, spec: dict[str, Any], events: Events) -> RunResult:
        params = spec["params"]
        choice = self.capabilities.choose_image(params.get("model"), any_model=self.any_model)
        drawing = _drawing(params)
        loop = asyncio.get_running_loop()

        def progress(done: int, total: int) -> bool:
            loop.call_soon_threadsafe(events.progress, int(100 * done / total))
            return events.cancelled

        if choice.weights is not None:
            events.log(f"drawing with {choice.model}")
            png = await self.stable_diffusion.draw(choice.weights, drawing, progress)
        else:
            await self.prepare()
            png = await asyncio.to_thread(self._generate, drawing, progress=progress)
        if events.cancelled:
            raise JobFailed("stopped")
        return RunResult(
            result={
                "image_base64": base64.b64encode(png).decode(),
                "format": "png",
                "width": drawing.width,
                "height": drawing.height,
                "steps": drawing.steps,
                "seed": drawing.seed,
                "model": choice.model,
            }
        )

    async def prepare(self) -> None:
        async with self._lock:
            if self._unet is None:
                self._unet = await asyncio.to_thread(self._load)

    def _load(self) -> Any:
        import torch
        from diffusers import UNet2DModel

        torch.set_num_threads(self.threads)
        unet = UNet2DModel.from_pretrained(MODEL_DIR, low_cpu_mem_usage=False)
        unet.eval()
        return unet

    def _generate(self, drawing: Drawing, *, progress: Any) -> bytes:
        """The tiny model ignores negative_prompt and guidance_scale: it is conditioned on a colour only."""
        import torch
        from diffusers import DDIMScheduler
        from PIL import Image

        prompt, width, height = drawing.prompt, drawing.width, drawing.height
        steps, seed = drawing.steps, drawing.seed
        scheduler = DDIMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
        scheduler.set_timesteps(steps)
        generator = torch.Generator().manual_seed(seed)
        label = torch.tensor([colour_of(prompt, random.Random(seed))])  # noqa: S311 - not for secrets
        sample = torch.randn((1, 3, height, width), generator=generator)
        with torch.inference_mode():
            for done, t in enumerate(scheduler.timesteps, start=1):
                predicted = self._unet(sample, t, class_labels=label).sample
                sample = scheduler.step(predicted, t, sample).prev_sample
                if progress(done, steps):
                    break
        pixels = ((sample[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return buffer.getvalue()

    async def close(self) -> None:
        self._unet = None
        await self.stable_diffusion.close()
