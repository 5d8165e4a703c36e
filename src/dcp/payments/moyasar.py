"""Moyasar (https://moyasar.com), Saudi Arabia's payment gateway, through its REST API v1."""

from __future__ import annotations

import hmac
from typing import Any

import httpx

from dcp.config import MoyasarSettings
from dcp.payments.gateway import GatewayError, Invoice, Payment, UnknownPayment


class MoyasarGateway:
    """Invoices are Moyasar's hosted payment pages; payments are re-read by id to verify a webhook."""

    name = "moyasar"

    def __init__(
        self, settings: MoyasarSettings, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._http = httpx.AsyncClient(
            base_url=settings.api_base.rstrip("/") + "/",
            auth=(settings.secret_key, ""),
            timeout=httpx.Timeout(15.0),
            transport=transport,
        )

    async def create_invoice(self, *, amount_halala: int, description: str, success_url: str) -> Invoice:
        body = await self._call(
            "POST",
            "invoices",
            json={
                "amount": amount_halala,
                "currency": "SAR",
                "description": description,
                "success_url": success_url,
            },
        )
        return Invoice(
            id=str(body["id"]),
            url=str(body["url"]),
            amount_halala=int(body["amount"]),
            status=str(body["status"]),
        )

    async def fetch_payment(self, payment_id: str) -> Payment:
        body = await self._call("GET", f"payments/{payment_id}")
        return Payment(
            id=str(body["id"]),
            status=str(body["status"]),
            amount_halala=int(body["amount"]),
            currency=str(body["currency"]),
            invoice_id=body.get("invoice_id"),
        )

    def webhook_secret_matches(self, token: str) -> bool:
        expected = self._settings.webhook_secret
        return bool(expected) and hmac.compare_digest(token.encode(), expected.encode())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            answer = await self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise GatewayError(f"Moyasar is unreachable: {type(exc).__name__}") from exc
        if answer.status_code == 404:
            raise UnknownPayment(f"Moyasar has no {path}")
        if answer.status_code >= 400:
            raise GatewayError(f"Moyasar answered {answer.status_code}")
        body: dict[str, Any] = answer.json()
        return body
