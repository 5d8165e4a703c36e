"""Bodies of the withdrawal endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from dcp.withdrawals.iban import is_valid_saudi_iban, normalize_iban

MIN_WITHDRAWAL_HALALA = 1000


def _iban(value: str) -> str:
    iban = normalize_iban(value)
    if not is_valid_saudi_iban(iban):
        raise ValueError("must be a Saudi IBAN: SA followed by 22 digits, with a valid check number")
    return iban


Iban = Annotated[str, StringConstraints(max_length=40), AfterValidator(_iban)]


class WithdrawalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_halala: StrictInt = Field(
        ge=MIN_WITHDRAWAL_HALALA, le=10**11, description="At least 1000 (10 SAR)"
    )
    iban: Iban


class WithdrawalView(BaseModel):
    id: int
    provider_id: int
    amount_halala: int
    amount_sar: str
    iban: str = Field(description="Masked for providers, in full for admins")
    status: str
    requested_at: str | None
    approved_at: str | None
    finished_at: str | None
    payout_reference: str | None
    rejection_reason: str | None


class WithdrawalOne(BaseModel):
    success: bool = True
    withdrawal: WithdrawalView


class WithdrawalList(BaseModel):
    withdrawals: list[WithdrawalView]
    total: int
    limit: int
    offset: int


class WithdrawalSummary(BaseModel):
    pending_count: int
    pending_halala: int
    approved_count: int
    approved_halala: int
    paid_count: int
    paid_halala: int
    rejected_count: int


class AdminWithdrawals(BaseModel):
    """The seed's shape: open requests, a page of all of them, and counts by status."""

    pending: list[WithdrawalView]
    all: list[WithdrawalView]
    summary: WithdrawalSummary
    total: int
    limit: int
    offset: int


class MarkPaid(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reference: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = Field(
        description="The bank transfer's reference"
    )


class Reject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
