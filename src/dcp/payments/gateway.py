"""What DCP needs from a payment gateway: hosted invoices, and payments it can re-read to verify."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Invoice:
    id: str
    url: str
    amount_halala: int
    status: str


@dataclass(frozen=True)
class Payment:
    id: str
    status: str
    amount_halala: int
    currency: str
    invoice_id: str | None


class GatewayError(Exception):
    """The gateway could not be reached or refused the request."""


class UnknownPayment(GatewayError):
    """The gateway has no payment with this id."""


class PaymentGateway(Protocol):
    name: str

    async def create_invoice(self, *, amount_halala: int, description: str, success_url: str) -> Invoice: ...

    async def fetch_payment(self, payment_id: str) -> Payment: ...

    def webhook_secret_matches(self, token: str) -> bool: ...
