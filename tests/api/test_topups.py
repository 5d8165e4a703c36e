"""Online top-ups through Moyasar's API (a local stand-in speaking it): credit once, verify every time."""

from __future__ import annotations

import logging

import httpx
import pytest

from dcp.app import create_app
from dcp.payments.moyasar import MoyasarGateway
from tests.support.factories import register_renter
from tests.support.fake_moyasar import FakeMoyasar

SECRET = "sk_test_" + "m" * 24
WEBHOOK_SECRET = "whsec-" + "w" * 24


@pytest.fixture
async def moyasar(client, settings, database, clock):
    """The stand-in gateway and a client of a DCP server wired to it (``client`` resets the tables)."""
    fake = FakeMoyasar(secret_key=SECRET)
    settings.moyasar.secret_key = SECRET
    settings.moyasar.webhook_secret = WEBHOOK_SECRET
    gateway = MoyasarGateway(settings.moyasar, transport=httpx.ASGITransport(app=fake.app))
    app = create_app(settings, db=database, clock=clock, payment_gateway=gateway)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield fake, http
    await gateway.aclose()


async def _topup(http, renter, amount=5000):
    answer = await http.post(
        "/api/renters/topups", headers=renter.renter_headers, json={"amount_halala": amount}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["topup"]


async def _balance(http, renter):
    return (await http.get("/api/renters/balance", headers=renter.renter_headers)).json()["balance_halala"]


async def _webhook(http, event, secret=WEBHOOK_SECRET):
    return await http.post("/api/payments/moyasar/webhook", json={**event, "secret_token": secret})


async def test_pay_and_credit_exactly_once(moyasar, caplog):
    fake, http = moyasar
    renter = await register_renter(http)
    topup = await _topup(http, renter)
    assert topup["status"] == "created" and topup["payment_url"].startswith("https://checkout.moyasar.com/")
    invoice_id = topup["payment_url"].split("/")[-1].split("?")[0]
    event = fake.pay(invoice_id)
    first = await _webhook(http, event)
    assert first.status_code == 200 and first.json() == {"received": True, "credited": True}
    repeated = await _webhook(http, event)
    assert repeated.json() == {"received": True, "credited": False}
    assert await _balance(http, renter) == 5000
    caplog.set_level(logging.WARNING, logger="dcp.payments")
    twice = await _webhook(http, fake.pay(invoice_id))  # the customer paid the invoice a second time
    assert twice.json() == {"received": True, "credited": False} and await _balance(http, renter) == 5000
    assert "was not credited" in caplog.text  # the operators are told of money that came and was not credited
    listed = (await http.get("/api/renters/topups", headers=renter.renter_headers)).json()
    assert listed["topups"][0]["status"] == "paid" and listed["total"] == 1


async def test_forged_webhooks_credit_nothing(moyasar):
    fake, http = moyasar
    renter = await register_renter(http)
    topup = await _topup(http, renter)
    invoice_id = topup["payment_url"].split("/")[-1].split("?")[0]
    event = fake.pay(invoice_id)
    assert (await _webhook(http, event, secret="guess")).status_code == 401
    invented = {**event, "data": {**event["data"], "id": "00000000-0000-0000-0000-000000000000"}}
    assert (await _webhook(http, invented)).status_code == 400  # Moyasar does not know that payment
    assert await _balance(http, renter) == 0


async def test_underpaid_or_failed_payments_credit_nothing(moyasar):
    fake, http = moyasar
    renter = await register_renter(http)
    for kwargs in ({"amount": 100}, {"status": "failed"}):
        topup = await _topup(http, renter)
        invoice_id = topup["payment_url"].split("/")[-1].split("?")[0]
        event = {**fake.pay(invoice_id, **kwargs), "type": "payment_paid"}
        answer = await _webhook(http, event)
        assert answer.status_code == 400
    assert await _balance(http, renter) == 0


@pytest.mark.parametrize("amount", [0, 99, -5000, 10**12, 50.5, "5000"])
async def test_bad_amounts(moyasar, amount):
    fake, http = moyasar
    renter = await register_renter(http)
    answer = await http.post(
        "/api/renters/topups", headers=renter.renter_headers, json={"amount_halala": amount}
    )
    assert answer.status_code == 400
    assert fake.invoices == {}


async def test_unknown_invoice(moyasar):
    _, http = moyasar
    event = {"id": "e", "type": "payment_paid", "data": {"id": "p", "invoice_id": "nope"}}
    assert (await _webhook(http, event)).status_code == 404


async def test_disabled_without_a_gateway(client):
    renter = await register_renter(client)
    answer = await client.post(
        "/api/renters/topups", headers=renter.renter_headers, json={"amount_halala": 5000}
    )
    assert answer.status_code == 409
    assert "not enabled" in answer.json()["error"]
