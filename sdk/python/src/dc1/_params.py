"""Typed params for each job type, as the server takes them (unknown keys are refused), and submit options."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

# Each job type with the short names the server also accepts.
LlmJobType = Literal["llm_inference", "llm", "llm_infer"]
ImageJobType = Literal["image_generation", "image", "image_gen"]
VllmServeJobType = Literal["vllm_serve", "vllm"]
ContainerJobType = Literal["custom_container", "container", "custom"]
JobType = LlmJobType | ImageJobType | VllmServeJobType | ContainerJobType


# Required keys sit in a base class, optional ones in the total=False subclass (Required[] needs Python 3.11).
class _LlmRequired(TypedDict):
    prompt: str


class LlmParams(_LlmRequired, total=False):
    """``llm_inference``: the server's defaults are gemma3-270m, 256 tokens, temperature 0.7."""

    model: str
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str]
    seed: int | None


class _ImageRequired(TypedDict):
    prompt: str


class ImageParams(_ImageRequired, total=False):
    """``image_generation``: width and height are multiples of 8 from 64 to 2048."""

    model: str
    negative_prompt: str | None
    steps: int
    width: int
    height: int
    guidance_scale: float
    seed: int | None


class _VllmServeRequired(TypedDict):
    model: str


class VllmServeParams(_VllmServeRequired, total=False):
    """``vllm_serve``: an OpenAI-compatible endpoint for ``model`` while the job runs."""

    max_model_len: int
    dtype: Literal["auto", "float16", "bfloat16", "float32"]


class _ContainerRequired(TypedDict):
    script: str


class ContainerParams(_ContainerRequired, total=False):
    """``custom_container``: a Python script; ``network`` asks for network access (an operator allows it)."""

    image_override: str | None
    network: bool


class SubmitOptions(TypedDict, total=False):
    """What ``jobs.submit`` takes besides the job type, its params and ``duration_minutes``."""

    provider_id: int | None
    max_duration_seconds: int | None
    pricing_class: Literal["priority", "standard", "economy"] | None
    priority: int | None
    gpu_requirements: dict[str, Any] | None
    idempotency_key: str | None
