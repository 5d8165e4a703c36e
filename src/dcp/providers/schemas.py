"""Request and response bodies of the provider endpoints (field names as in the seeds)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from dcp.billing.statements import StatementLine
from dcp.jobs.schemas import JobView
from dcp.kit.fields import Email, Name, NoNul, Phone, Text200, lenient_enum

OperatingSystem = Annotated[
    Literal["linux", "windows", "macos"],
    lenient_enum(
        {
            "ubuntu": "linux",
            "debian": "linux",
            "win": "windows",
            "win32": "windows",
            "darwin": "macos",
            "mac": "macos",
            "osx": "macos",
        }
    ),
]
Version = Annotated[str, StringConstraints(strip_whitespace=True, max_length=32)]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]


class ProviderRegister(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Name
    email: Email
    gpu_model: Name
    os: OperatingSystem = Field(description="linux, windows or macos (ubuntu, win, darwin… accepted)")
    phone: Phone | None = None


class ProviderRegistered(BaseModel):
    success: bool = True
    provider_id: int
    api_key: str = Field(description="Shown only this once")
    installer_url: str
    install_commands: dict[str, str] = Field(
        description="One line per OS that installs and starts the daemon"
    )
    approval_status: str
    message: str


class GpuStatus(BaseModel):
    """One GPU's telemetry as the daemon reads it from NVML; absent figures stay absent."""

    model_config = ConfigDict(extra="ignore")

    gpu_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    gpu_vram_mib: int | None = Field(None, ge=0, le=4_194_304)
    vram_used_mib: int | None = Field(None, ge=0, le=4_194_304)
    gpu_util_pct: int | None = Field(None, ge=0, le=100)
    temp_c: int | None = Field(None, ge=-50, le=150)
    power_w: int | None = Field(None, ge=0, le=10_000)
    driver_version: Version | None = None
    cuda_version: Version | None = None


class HeartbeatStatus(GpuStatus):
    daemon_version: Version | None = None
    python_version: Version | None = None
    os_info: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None


class ServingStatus(BaseModel):
    """The daemon's OpenAI-compatible engine for the /v1 pool, when the provider opted in."""

    model_config = ConfigDict(extra="ignore")

    models: list[ModelName] = Field(default_factory=list, max_length=20)
    ready: bool = False
    concurrency: int = Field(1, ge=1, le=256)
    context_length: int = Field(4096, ge=128, le=1_048_576)


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    api_key: str | None = Field(None, description="Or the x-provider-key header")
    gpu_status: HeartbeatStatus = HeartbeatStatus()
    gpus: list[GpuStatus] = Field(default_factory=list, max_length=16, description="One entry per GPU")
    provider_hostname: Text200 | None = Field(None, description="Absent: the last one reported is kept")
    cached_models: list[ModelName] | None = Field(
        None, max_length=200, description="Absent: the last list reported is kept; [] clears it"
    )
    free_disk_mib: int | None = Field(None, ge=0)
    slots: int | None = Field(None, ge=1, le=64, description="Jobs the daemon runs at once (default 1)")
    serving: ServingStatus | None = Field(None, description="Present when the provider serves the /v1 pool")


class HeartbeatAnswer(BaseModel):
    success: bool = True
    message: str = "Heartbeat received"
    timestamp: str
    status: str = Field(description="online, paused, suspended or pending (approval)")
    needs_update: bool
    latest_version: str
    update_available: bool
    min_version: str
    approval_status: str
    approved: bool
    preload_model: str | None = None


class KeyBody(BaseModel):
    """Pause and resume take the key in the body, as the seed shows, or in a header."""

    model_config = ConfigDict(extra="ignore")

    key: str | None = None


class PauseAnswer(BaseModel):
    success: bool = True
    status: str
    paused: bool


class GpuView(BaseModel):
    gpu_name: str | None
    gpu_vram_mib: int | None
    gpu_count: int
    gpus: list[GpuStatus]
    gpu_util_pct: int | None
    temp_c: int | None


class ProviderView(BaseModel):
    id: int
    name: str
    email: str
    gpu_model: str
    os: str
    status: str
    is_online: bool
    approval_status: str
    paused: bool
    created_at: str | None
    last_heartbeat: str | None
    daemon_version: str | None
    hostname: str | None
    cached_models: list[str]
    gpu: GpuView
    total_jobs: int
    reliability_pct: int = Field(description="Share of leased jobs finished rather than lost")
    slots: int = Field(description="Jobs it runs at once")
    earnings_halala: int
    earnings_sar: str
    payout_pending_halala: int


class ProviderMe(BaseModel):
    provider: ProviderView
    recent_jobs: list[JobView] = Field(description="The five most recent jobs")
    active_jobs: list[JobView] = Field(description="The jobs it holds now (leased or running), newest first")


class RotatedKey(BaseModel):
    success: bool = True
    api_key: str = Field(description="The new key, shown only this once; the old key stops working now")
    message: str


class MarketProvider(BaseModel):
    id: int
    name: str
    gpu_model: str
    gpu_name: str | None
    gpu_count: int
    vram_gb: int = Field(description="Memory of the first GPU in GiB (0 when the provider reports no GPU)")
    vram_mib: int | None
    is_live: bool
    status: str
    cached_models: list[str]
    price_per_minute_halala: dict[str, int]
    reliability_pct: int = Field(description="Share of leased jobs finished rather than lost")
    last_heartbeat: str | None


class MarketListing(BaseModel):
    providers: list[MarketProvider]
    total: int = Field(description="Providers that match the filters, on every page")
    limit: int
    offset: int
    next_after: int | None = Field(
        description="Pass as ``after`` for the next page (null on the last): unlike an offset, it neither "
        "skips nor repeats providers as they come online or leave between pages"
    )


class ProviderEarnings(BaseModel):
    earnings_halala: int = Field(description="Withdrawable now")
    earnings_sar: str
    payout_pending_halala: int = Field(description="In withdrawal requests not yet paid")
    total_earned_halala: int = Field(description="Earned from finished work, ever")
    lines: list[StatementLine]
    total: int
    limit: int
    offset: int


class PriceUpdate(BaseModel):
    """Per-minute prices in halala; a type left out keeps its price, null returns it to the default."""

    model_config = ConfigDict(extra="forbid")

    llm_inference: StrictInt | None = None
    image_generation: StrictInt | None = None
    vllm_serve: StrictInt | None = None
    custom_container: StrictInt | None = None


class PriceBounds(BaseModel):
    min: int
    max: int


class ProviderPrices(BaseModel):
    price_per_minute_halala: dict[str, int] = Field(description="What renters pay per minute, per job type")
    custom: dict[str, int] = Field(description="The prices this provider set itself")
    bounds: dict[str, PriceBounds] = Field(description="The range an operator allows for each job type")
