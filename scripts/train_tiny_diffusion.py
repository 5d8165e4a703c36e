"""Train DCP's tiny image model: a class-conditional diffusion UNet on procedurally drawn shapes.

No weights can be downloaded on these machines, so the CPU image runtime ships a model trained here, in a few
minutes on two CPU cores. It draws a coloured disc or square on a soft background; the prompt's first colour
word picks the colour. Run it from the repository root:

    .venv/bin/python scripts/train_tiny_diffusion.py [--steps 2500]

It writes ``src/dcp/agent/runtimes/tiny_diffusion/`` (diffusers' ``save_pretrained`` layout, a few MB).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from diffusers import DDPMScheduler, UNet2DModel

from dcp.agent.runtimes.image import COLORS, MODEL_DIR, new_unet

SIZE = 32


def draw(rng: np.random.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [-1, 1] of a coloured disc or square on a dim gradient, and their colour labels."""
    labels = rng.integers(0, len(COLORS), size=batch)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    images = np.empty((batch, 3, SIZE, SIZE), dtype=np.float32)
    for index, label in enumerate(labels):
        tint = rng.uniform(0.05, 0.3, size=3)[:, None, None]
        background = tint * (0.6 + 0.4 * (xs if rng.random() < 0.5 else ys))[None]
        cx, cy, radius = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.3)
        if rng.random() < 0.5:
            mask = (xs - cx) ** 2 + (ys - cy) ** 2 <= radius**2
        else:
            mask = (abs(xs - cx) <= radius) & (abs(ys - cy) <= radius)
        colour = np.array(COLORS[label][1], dtype=np.float32)[:, None, None] / 255
        images[index] = np.where(mask[None], colour, background)
    return torch.from_numpy(images * 2 - 1), torch.from_numpy(labels)


def train(steps: int, seed: int) -> UNet2DModel:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    unet = new_unet()
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    optimiser = torch.optim.AdamW(unet.parameters(), lr=2e-3, weight_decay=1e-4)
    lr = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=2e-3, total_steps=steps)
    for step in range(steps):
        images, labels = draw(rng, 64)
        noise = torch.randn_like(images)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (images.shape[0],))
        predicted = unet(scheduler.add_noise(images, noise, t), t, class_labels=labels).sample
        loss = torch.nn.functional.mse_loss(predicted, noise)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        lr.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {loss.item():.4f}", flush=True)
    return unet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=MODEL_DIR)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    unet = train(args.steps, args.seed)
    unet.save_pretrained(args.out, safe_serialization=True)
    print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
