"""Request and response bodies of the renter endpoints (field names as in the seeds)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from dcp.billing.statements import StatementLine
from dcp.jobs.schemas import JobView
from dcp.kit.fields import Email, Name, Phone, Text200


class RenterRegister(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Name
    email: Email
    organization: Text200 | None = None
    use_case: Text200 | None = Field(None, description="What the renter plans to run, e.g. llm_inference")
    phone: Phone | None = None


class RenterRegistered(BaseModel):
    success: bool = True
    renter_id: int
    api_key: str = Field(description="Shown only this once")
    message: str


class Balance(BaseModel):
    balance_halala: int = Field(description="Available to spend now")
    balance_sar: str = Field(description="The same in SAR, as an exact decimal string")
    held_halala: int = Field(description="Reserved for jobs that have not finished")
    held_sar: str
    total_halala: int = Field(description="Available plus held")


class RenterView(BaseModel):
    id: int
    name: str
    email: str
    organization: str | None
    use_case: str | None
    status: str
    created_at: str | None
    balance_halala: int
    balance_sar: str
    held_halala: int
    total_jobs: int


class RenterMe(BaseModel):
    renter: RenterView
    recent_jobs: list[JobView] = Field(description="The five most recent jobs")


class RenterStatement(BaseModel):
    """Movements of the renter's available balance: top-ups, holds, releases and refunds."""

    balance_halala: int
    held_halala: int
    transactions: list[StatementLine]
    total: int
    limit: int
    offset: int
