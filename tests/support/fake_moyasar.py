"""A local stand-in for Moyasar's REST API v1 (invoices, payments) as documented, for tests."""

from __future__ import annotations

import base64
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request


class FakeMoyasar:
    """Keeps invoices and payments in memory; ``pay`` plays the customer paying on the hosted page."""

    def __init__(self, *, secret_key: str) -> None:
        self.secret_key = secret_key
        self.invoices: dict[str, dict[str, Any]] = {}
        self.payments: dict[str, dict[str, Any]] = {}
        self.app = FastAPI()
        self.app.post("/v1/invoices", status_code=201)(self._create_invoice)
        self.app.get("/v1/payments/{payment_id}")(self._fetch_payment)

    def _authorize(self, request: Request) -> None:
        expected = "Basic " + base64.b64encode(f"{self.secret_key}:".encode()).decode()
        if request.headers.get("authorization") != expected:
            raise HTTPException(
                401, {"type": "authentication_error", "message": "Invalid authorization credentials"}
            )

    async def _create_invoice(self, request: Request) -> dict[str, Any]:
        self._authorize(request)
        body = await request.json()
        if not isinstance(body.get("amount"), int) or body["amount"] < 100 or body.get("currency") != "SAR":
            raise HTTPException(400, {"type": "invalid_request_error", "message": "Validation Failed"})
        invoice_id = str(uuid.uuid4())
        invoice = {
            "id": invoice_id,
            "status": "initiated",
            "amount": body["amount"],
            "currency": body["currency"],
            "description": body["description"],
            "url": f"https://checkout.moyasar.com/invoices/{invoice_id}?lang=en",
            "success_url": body.get("success_url"),
            "payments": [],
        }
        self.invoices[invoice_id] = invoice
        return invoice

    async def _fetch_payment(self, payment_id: str, request: Request) -> dict[str, Any]:
        self._authorize(request)
        if payment_id not in self.payments:
            raise HTTPException(404, {"type": "api_error", "message": "Object not found"})
        return self.payments[payment_id]

    def pay(self, invoice_id: str, *, amount: int | None = None, status: str = "paid") -> dict[str, Any]:
        """The customer pays the invoice; returns the webhook event Moyasar would send."""
        invoice = self.invoices[invoice_id]
        payment = {
            "id": str(uuid.uuid4()),
            "status": status,
            "amount": invoice["amount"] if amount is None else amount,
            "currency": "SAR",
            "invoice_id": invoice_id,
            "source": {"type": "creditcard", "company": "mada", "number": "4201-32XX-XXXX-1010"},
        }
        self.payments[payment["id"]] = payment
        invoice["status"] = status
        invoice["payments"].append(payment)
        return {
            "id": str(uuid.uuid4()),
            "type": "payment_paid" if status == "paid" else "payment_failed",
            "created_at": "2026-11-26T10:00:00.000Z",
            "secret_token": "",
            "live": False,
            "data": payment,
        }
