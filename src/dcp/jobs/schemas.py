"""Request and response bodies of the job endpoints (the seed's ``job`` object and output shape)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from dcp.kit.errors import ErrorBody
from dcp.kit.fields import lenient_enum

JobType = Annotated[
    Literal["llm_inference", "image_generation", "vllm_serve", "custom_container"],
    lenient_enum(
        {
            "llm": "llm_inference",
            "llm_infer": "llm_inference",
            "image_gen": "image_generation",
            "image": "image_generation",
            "vllm": "vllm_serve",
            "container": "custom_container",
            "custom": "custom_container",
        }
    ),
]
PricingClass = Annotated[Literal["priority", "standard", "economy"], lenient_enum({})]
JobStatus = Literal["pending", "assigned", "running", "completed", "failed", "cancelled"]


_QUEUE_POSITION = (
    "While pending: 1 for the next job its queue hands out. Jobs ahead are counted up to 1,000, so 1001 means"
    " 1,001st or later. Null once the job left the queue"
)


class ContainerSpec(BaseModel):
    model_config = ConfigDict(extra="ignore")

    image_type: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    pricing_class: PricingClass | None = None


class GpuRequirements(BaseModel):
    model_config = ConfigDict(extra="ignore")

    min_vram_gb: int | None = Field(None, ge=0, le=1024)
    gpu_model: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None
    ) = None


class JobSubmit(BaseModel):
    """The seed's submit body. ``prompt`` and ``model`` at the top level (the oldest seed) go into params."""

    model_config = ConfigDict(extra="ignore")

    renter_key: str | None = Field(None, description="Or the x-renter-key header")
    provider_id: StrictInt | None = Field(
        None, ge=1, le=2_147_483_647, description="Absent: DCP places the job"
    )
    job_type: JobType
    duration_minutes: StrictInt = Field(ge=1, le=1440, description="Billing basis: the hold is for this long")
    max_duration_seconds: StrictInt | None = Field(
        None, ge=10, le=86400, description="Hard stop; default the duration"
    )
    container_spec: ContainerSpec = ContainerSpec()
    gpu_requirements: GpuRequirements | None = None
    priority: StrictInt = Field(5, ge=0, le=10, description="Higher runs first")
    pricing_class: PricingClass | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    prompt: Annotated[str, StringConstraints(min_length=1, max_length=100_000)] | None = None
    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)] | None = (
        None
    )


class JobView(BaseModel):
    id: int
    job_id: str
    provider_id: int | None
    renter_id: int
    job_type: str
    model: str | None
    status: JobStatus
    submitted_at: str | None
    started_at: str | None
    completed_at: str | None
    duration_minutes: int
    cost_halala: int = Field(description="The quote, held at submit")
    actual_cost_halala: int | None
    refunded_halala: int | None
    max_duration_seconds: int
    timeout_at: str | None
    gpu_requirements: dict[str, Any] | None
    container_spec: dict[str, Any]
    workspace_volume_name: str
    checkpoint_enabled: bool = False
    task_spec_signed: bool = True
    priority: int
    pricing_class: str
    prewarm_requested: bool = False
    queue_position: int | None = Field(description=_QUEUE_POSITION)
    progress: int
    attempts: int
    error: str | None


class JobOne(BaseModel):
    success: bool = True
    job: JobView


class JobList(BaseModel):
    jobs: list[JobView]
    total: int = Field(description="Jobs that match the filters, on every page")
    limit: int
    offset: int
    next_before: str | None = Field(
        description="Pass as ``before`` for the next page (null on the last): unlike an offset, it neither "
        "skips nor repeats jobs when jobs are submitted or change status between pages"
    )


class Billing(BaseModel):
    quoted_halala: int
    actual_cost_halala: int
    refunded_halala: int


class JobOutput(BaseModel):
    job_id: str
    status: str
    type: str = Field(description="text, image, endpoint or container")
    result: dict[str, Any]
    response: str | None = Field(None, description="The text of an LLM job (also in result.response)")
    tokens_generated: int | None
    execution_time_ms: int | None
    billing: Billing
    actual_cost_halala: int


class JobGone(ErrorBody):
    """A failed or cancelled job's output: why, and what was refunded."""

    status: str
    job_id: str
    billing: Billing


class JobPendingOutput(BaseModel):
    job_id: str
    status: str
    progress: int
    queue_position: int | None = Field(description=_QUEUE_POSITION)
    message: str


class CancelAnswer(BaseModel):
    success: bool = True
    job: JobView


LeaseToken = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class TaskSpec(BaseModel):
    spec: dict[str, Any]
    signature: str = Field(description="HMAC-SHA256 of the canonical spec under the provider's signing key")


class LeaseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease_token: LeaseToken


class JobEvents(BaseModel):
    """Progress, log lines and generated tokens; each report also renews the lease."""

    model_config = ConfigDict(extra="forbid")

    lease_token: LeaseToken
    progress: int | None = Field(None, ge=0, le=100)
    tokens: list[Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=list, max_length=512
    )
    logs: list[Annotated[str, StringConstraints(max_length=4096)]] = Field(
        default_factory=list, max_length=256
    )
    endpoint_url: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        None,
        description="vllm_serve: set once the endpoint serves (the server publishes a URL of its own for it)",
    )


def _shown_fields(result: dict[str, Any]) -> dict[str, Any]:
    """The result's fields the output and the job page show must have their types: a ``response`` that was
    not text made every read of the job's output a 500."""
    for key in ("response", "output", "image_base64", "endpoint_url", "model"):
        if result.get(key) is not None and not isinstance(result[key], str):
            raise ValueError(f"result.{key} must be text")
    for key in ("width", "height"):
        if result.get(key) is not None and type(result[key]) is not int:
            raise ValueError(f"result.{key} must be a whole number")
    return result


class JobResult(BaseModel):
    """The provider's report. What the renter pays is computed by the server, not taken from here."""

    model_config = ConfigDict(extra="forbid")

    lease_token: LeaseToken
    status: Literal["completed", "failed"]
    result: Annotated[dict[str, Any], AfterValidator(_shown_fields)] = Field(default_factory=dict)
    tokens_generated: int | None = Field(None, ge=0, le=10_000_000)
    execution_time_ms: int | None = Field(None, ge=0, le=10**9)
    error: Annotated[str, StringConstraints(max_length=2000)] | None = None
    cause: Literal["job", "provider", "interrupted"] = Field(
        "provider",
        description="For a failure: job when the job's own program failed (a non-zero exit) or ran out its "
        "time, billed for the time it ran; provider when the provider could not run it, refunded in full; "
        "interrupted when the daemon stopped or restarted while it ran: the job goes back to the queue, as "
        "when a lease runs out (failed and refunded once its retries are spent)",
    )


class Ack(BaseModel):
    success: bool = True
    status: str
    lease_expires_at: str | None = None
