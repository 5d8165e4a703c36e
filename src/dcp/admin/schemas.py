"""Bodies of the admin endpoints; the dashboard keeps every field of the seed's shape."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from dcp.providers.schemas import ProviderView
from dcp.renters.schemas import RenterView


class Stats(BaseModel):
    total_providers: int
    online_now: int
    offline: int
    total_renters: int
    active_renters: int = Field(description="Renters whose money moved in the last 30 days")
    total_renter_balance_halala: int
    total_jobs: int
    completed_jobs: int
    failed_jobs: int
    active_jobs: int
    total_revenue_halala: int
    total_dc1_fees_halala: int
    today_revenue_halala: int
    today_dc1_fees_halala: int
    today_jobs: int
    timestamp: str


class GpuCount(BaseModel):
    gpu_model: str
    total: int
    online: int


class Signup(BaseModel):
    type: str
    id: int
    name: str
    email: str
    created_at: str | None


class RecentHeartbeat(BaseModel):
    provider_id: int
    name: str
    gpu_name: str | None
    gpu_util_pct: int | None
    temp_c: int | None
    last_heartbeat: str | None
    is_online: bool


class Dashboard(BaseModel):
    stats: Stats
    gpu_breakdown: list[GpuCount]
    recent_signups: list[Signup]
    recent_heartbeats: list[RecentHeartbeat]


class DayActivity(BaseModel):
    """One day in the operators' time zone: jobs submitted and completed, and what renters paid."""

    day: date
    jobs_submitted: int
    jobs_completed: int
    revenue_halala: int
    fees_halala: int


class ProviderList(BaseModel):
    providers: list[ProviderView]
    total: int
    limit: int
    offset: int


class AdminRenterView(RenterView):
    phone: str | None


class RenterList(BaseModel):
    renters: list[AdminRenterView]
    total: int
    limit: int
    offset: int


class ProviderOne(BaseModel):
    provider: ProviderView


class RenterOne(BaseModel):
    renter: AdminRenterView


MAX_CREDIT_HALALA = 100_000_000


class Credit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_halala: StrictInt = Field(gt=0, le=MAX_CREDIT_HALALA, description="Whole halala, 1 to 100,000,000")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    idempotency_key: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        None, description="Or the Idempotency-Key header; a repeat returns the first credit"
    )


class Credited(BaseModel):
    success: bool = True
    renter_id: int
    amount_halala: int
    transaction_id: int
    duplicate: bool
    balance_halala: int
    balance_sar: str


class ModelPriceBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    input_per_million_halala: StrictInt = Field(ge=0, le=10**9)
    output_per_million_halala: StrictInt = Field(ge=0, le=10**9)


class ModelPriceView(BaseModel):
    model: str
    input_per_million_halala: int
    output_per_million_halala: int
    updated_at: str | None


class ModelPriceList(BaseModel):
    prices: list[ModelPriceView]
    default: ModelPriceView = Field(description="What a model without its own price costs")
