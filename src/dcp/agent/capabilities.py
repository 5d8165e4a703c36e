"""What this machine can run, decided once at daemon start, and the one rule that picks a model's engine."""

from __future__ import annotations

import importlib.util
import json
import logging
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcp.agent.config import AgentConfig
from dcp.agent.runtimes import image as tiny_image
from dcp.agent.runtimes import llm as gguf
from dcp.agent.runtimes.base import JobFailed
from dcp.agent.telemetry import read_gpus

log = logging.getLogger("dcp.agent.capabilities")

VLLM_MODULE_COMMAND = (sys.executable, "-m", "vllm.entrypoints.openai.api_server")
SD_PIPELINES = frozenset({"StableDiffusionPipeline", "StableDiffusionXLPipeline"})


@dataclass(frozen=True)
class Weights:
    """A model folder on disk: its name (the path under the models folder), where it is, and its kind."""

    name: str
    path: Path
    kind: str  # an LLM's "chat" or "completion"; an image model's diffusers pipeline class


@dataclass(frozen=True)
class Choice:
    """The engine that serves a requested model here, and the name it serves it under."""

    engine: str  # "vllm", "llama", "diffusers" or "tiny"
    model: str
    weights: Weights | None = None


@dataclass(frozen=True)
class Capabilities:
    gpus: list[dict[str, Any]] = field(default_factory=list)
    cuda: bool = False  # torch sees a CUDA device
    llama_gpu: list[str] = field(default_factory=list)  # the GPU backends of the xllamacpp build
    vllm_command: tuple[str, ...] = ()
    llm_models: dict[str, Weights] = field(default_factory=dict)  # what vLLM serves
    image_models: dict[str, Weights] = field(default_factory=dict)  # Stable Diffusion / SDXL
    gguf_models: tuple[str, ...] = ()  # what llama.cpp serves
    tiny_image: bool = False

    @property
    def vllm(self) -> bool:
        return bool(self.vllm_command) and bool(self.llm_models)

    def llm_names(self) -> list[str]:
        return [*(self.llm_models if self.vllm else {}), *self.gguf_models]

    def image_names(self) -> list[str]:
        return [*self.image_models, *([tiny_image.MODEL_ID] if self.tiny_image else [])]

    def choose_llm(self, requested: str | None, *, any_model: bool = False) -> Choice:
        model = requested or gguf.MODEL_ID
        if self.vllm and model in self.llm_models:
            return Choice("vllm", model, self.llm_models[model])
        if self.gguf_models and (model in gguf.ALIASES or any_model):
            return Choice("llama", gguf.MODEL_ID)
        raise _refused("Model", model, self.llm_names())

    def choose_image(self, requested: str | None, *, any_model: bool = False) -> Choice:
        model = requested or tiny_image.MODEL_ID
        if model in self.image_models:
            return Choice("diffusers", model, self.image_models[model])
        if self.tiny_image and (model == tiny_image.MODEL_ID or any_model):
            return Choice("tiny", tiny_image.MODEL_ID)
        raise _refused("Image model", model, self.image_names())

    def describe(self) -> dict[str, Any]:
        return {
            "gpus": [gpu["gpu_name"] for gpu in self.gpus],
            "cuda": self.cuda,
            "llama_cpp_gpu": self.llama_gpu,
            "vllm": " ".join(self.vllm_command) or None,
            "llm_models": self.llm_names(),
            "image_models": self.image_names(),
        }


def _refused(kind: str, model: str, serves: Iterable[str]) -> JobFailed:
    """The one refusal for a model this provider cannot serve: the job fails before any work, refunded."""
    return JobFailed(f"{kind} {model!r} is not available on this provider (it serves: {', '.join(serves)})")


def importable(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def detect(
    config: AgentConfig, *, nvml: Any = None, has_module: Callable[[str], bool] = importable
) -> Capabilities:
    """Probe once: NVML for GPUs; only where there is one, CUDA in torch and GPU backends in llama.cpp
    (no GPU, no CUDA: this keeps torch out of a CPU daemon's start); then the model folders."""
    gpus = read_gpus(nvml)
    command = tuple(config.vllm_command)
    if not command and gpus and has_module("vllm"):
        command = VLLM_MODULE_COMMAND
    images = has_module("diffusers") and has_module("torch")
    found = Capabilities(
        gpus=gpus,
        cuda=bool(gpus) and has_module("torch") and torch_sees_cuda(),
        llama_gpu=llama_gpu_backends() if gpus and has_module("xllamacpp") else [],
        vllm_command=command,
        llm_models=llm_folders(config.llm_models_dir) if command else {},
        image_models=image_folders(config.image_models_dir) if images and has_module("transformers") else {},
        gguf_models=(gguf.MODEL_ID,) if has_module("xllamacpp") and has_module(gguf.PACKAGE) else (),
        tiny_image=images and tiny_image.weights_present(),
    )
    if config.image_models_dir and images and not has_module("transformers"):
        log.warning("Stable Diffusion weights need the transformers package; install dcp[image]")
    log.info("capabilities: %s", found.describe())
    return found


def torch_sees_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def llama_gpu_backends() -> list[str]:
    """The GPU devices the installed xllamacpp build can offload to; none for the CPU-only PyPI wheel."""
    import xllamacpp

    gpu_types = {xllamacpp.ggml_backend_dev_type.GGML_BACKEND_DEVICE_TYPE_GPU}
    return [str(device["name"]) for device in xllamacpp.get_device_info() if device["type"] in gpu_types]


def _model_folders(root: Path | None, marker: str) -> dict[str, Path]:
    """Folders holding ``marker`` one or two levels under ``root``, named like the Hub: name or org/name."""
    if root is None or not root.is_dir():
        return {}
    found: dict[str, Path] = {}
    for pattern in (f"*/{marker}", f"*/*/{marker}"):
        for path in sorted(root.glob(pattern)):
            found[path.parent.relative_to(root).as_posix()] = path.parent
    return found


def llm_folders(root: Path | None) -> dict[str, Weights]:
    """Hugging Face model folders (a config.json, not a diffusers pipeline); "chat" where a chat template
    ships with the tokenizer, so jobs are sent as chat and get the model's own prompt format."""
    found = {}
    for name, path in _model_folders(root, "config.json").items():
        if (path / "model_index.json").exists() or (path.parent / "model_index.json").exists():
            continue  # a diffusers pipeline, or one of its parts
        found[name] = Weights(name, path, "chat" if _has_chat_template(path) else "completion")
    return found


def _has_chat_template(path: Path) -> bool:
    if (path / "chat_template.jinja").exists() or (path / "chat_template.json").exists():
        return True
    try:
        return "chat_template" in json.loads((path / "tokenizer_config.json").read_text())
    except (OSError, ValueError):
        return False


def image_folders(root: Path | None) -> dict[str, Weights]:
    """diffusers pipelines whose model_index.json names a Stable Diffusion or SDXL pipeline."""
    found = {}
    for name, path in _model_folders(root, "model_index.json").items():
        try:
            pipeline = str(json.loads((path / "model_index.json").read_text()).get("_class_name"))
        except (OSError, ValueError):
            continue
        if pipeline in SD_PIPELINES:
            found[name] = Weights(name, path, pipeline)
        else:
            log.warning("skipping %s: %s is not a Stable Diffusion pipeline", path, pipeline)
    return found
