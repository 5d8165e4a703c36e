"""Per-type job parameters, each with its bounds; unknown fields are refused so typos surface."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

MAX_SCRIPT_BYTES = 256 * 1024
MAX_PROMPT_CHARS = 100_000
DEFAULT_LLM_MODEL = "gemma3-270m"

ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Prompt = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROMPT_CHARS)]


def _multiple_of_8(value: int) -> int:
    if value % 8:
        raise ValueError("must be a multiple of 8")
    return value


Side = Annotated[int, Field(ge=64, le=2048), AfterValidator(_multiple_of_8)]


def _script_size(value: str) -> str:
    if len(value.encode()) > MAX_SCRIPT_BYTES:
        raise ValueError(f"must be at most {MAX_SCRIPT_BYTES} bytes")
    return value


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LlmParams(_Params):
    model: ModelName = DEFAULT_LLM_MODEL
    prompt: Prompt
    max_tokens: int = Field(256, ge=1, le=4096)
    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    stop: list[Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=4
    )
    seed: int | None = Field(None, ge=0, le=2**31 - 1)


class ImageParams(_Params):
    model: ModelName = "dcp-tiny-diffusion"
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    negative_prompt: Annotated[str, StringConstraints(max_length=2000)] | None = None
    steps: int = Field(30, ge=1, le=150)
    width: Side = 512
    height: Side = 512
    guidance_scale: float = Field(7.5, ge=0, le=30)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)


class VllmServeParams(_Params):
    model: ModelName
    max_model_len: int = Field(4096, ge=128, le=131072)
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"


class ContainerParams(_Params):
    script: Annotated[str, StringConstraints(min_length=1), AfterValidator(_script_size)]
    image_override: (
        Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._/-]{0,127}(:[\w.-]{1,64})?$")] | None
    ) = None
    network: bool = Field(False, description="Ask for network access (an operator must allow it)")


PARAMS: dict[str, type[_Params]] = {
    "llm_inference": LlmParams,
    "image_generation": ImageParams,
    "vllm_serve": VllmServeParams,
    "custom_container": ContainerParams,
}


def validate_params(job_type: str, params: dict[str, Any]) -> tuple[dict[str, Any], ValidationError | None]:
    """The params with defaults filled in, or the validation error (its locations start at ``params``)."""
    try:
        return PARAMS[job_type].model_validate(params).model_dump(), None
    except ValidationError as exc:
        return {}, exc
