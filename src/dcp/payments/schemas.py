"""Bodies of the top-up and payment webhook endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

GatewayId = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class TopupCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_halala: StrictInt = Field(description="Whole halala; the server's minimum and maximum apply")


class TopupView(BaseModel):
    id: int
    amount_halala: int
    amount_sar: str
    status: str = Field(description="created, paid or failed")
    payment_url: str = Field(description="The gateway's hosted page where the renter pays")
    created_at: str | None
    paid_at: str | None


class TopupOne(BaseModel):
    success: bool = True
    topup: TopupView


class TopupList(BaseModel):
    topups: list[TopupView]
    total: int
    limit: int
    offset: int


class MoyasarPaymentData(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: GatewayId
    invoice_id: GatewayId | None = None


class MoyasarEvent(BaseModel):
    """Moyasar's webhook: the event's type, the shared secret token, and the payment it is about."""

    model_config = ConfigDict(extra="ignore")

    id: GatewayId
    type: Annotated[str, StringConstraints(max_length=64)]
    secret_token: Annotated[str, StringConstraints(max_length=200)]
    data: MoyasarPaymentData


class WebhookAnswer(BaseModel):
    received: bool = True
    credited: bool = Field(description="True only the first time a paid payment is credited")
