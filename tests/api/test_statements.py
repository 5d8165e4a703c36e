"""Statements: renter transactions and provider earnings, paged, filtered by date, exported as CSV."""

from __future__ import annotations

import csv
import io

from dcp.billing import statements
from tests.support.factories import credit, register_provider, register_renter, settled_work


async def test_renter_statement_and_csv(client, admin, database, clock):
    renter = await register_renter(client)
    provider = await register_provider(client)
    await credit(client, admin, renter, 1000)
    clock.advance(hours=1)
    await settled_work(
        database,
        renter_id=renter.id,
        provider_id=provider.id,
        held=300,
        cost=120,
        ref="job-s",
        now=clock.now(),
    )
    body = (await client.get("/api/renters/transactions", headers=renter.renter_headers)).json()
    assert body["balance_halala"] == 880 and body["total"] == 3
    assert [(line["kind"], line["amount_halala"]) for line in body["transactions"]] == [
        ("charge", 180),  # the unused part of the hold returns
        ("hold", -300),
        ("topup", 1000),
    ]
    since = (clock.now()).isoformat()
    recent = await client.get(
        "/api/renters/transactions", headers=renter.renter_headers, params={"from": since}
    )
    assert recent.json()["total"] == 2
    exported = await client.get(
        "/api/renters/transactions", headers=renter.renter_headers, params={"format": "csv", "limit": 1}
    )
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [row["amount_halala"] for row in rows] == ["180", "-300", "1000"]  # every line, not one page


async def test_a_download_too_long_for_one_file_asks_for_narrower_dates(client, admin, monkeypatch):
    renter = await register_renter(client)
    for _ in range(3):
        await credit(client, admin, renter, 100)
    monkeypatch.setattr(statements, "CSV_MAX_LINES", 2)
    answer = await client.get(
        "/api/renters/transactions", headers=renter.renter_headers, params={"format": "csv"}
    )
    assert answer.status_code == 400 and "narrow the dates" in answer.json()["error"]


async def test_provider_earnings_statement(client, admin, database, clock):
    renter = await register_renter(client)
    provider = await register_provider(client)
    await credit(client, admin, renter, 1000)
    await settled_work(
        database,
        renter_id=renter.id,
        provider_id=provider.id,
        held=400,
        cost=400,
        ref="job-p",
        now=clock.now(),
    )
    body = (await client.get("/api/dc1/providers/earnings", headers=provider.provider_headers)).json()
    assert (
        body["earnings_halala"] == 300
        and body["earnings_sar"] == "3.00"
        and body["total_earned_halala"] == 300
    )
    assert [(line["kind"], line["reference"], line["amount_halala"]) for line in body["lines"]] == [
        ("charge", "job-p", 300)
    ]
    exported = await client.get(
        "/api/providers/earnings", headers=provider.provider_headers, params={"format": "csv"}
    )
    assert "job-p" in exported.text


async def test_csv_cells_cannot_become_formulas(client, admin):
    renter = await register_renter(client)
    await client.post(
        f"/api/admin/renters/{renter.id}/credit",
        headers={**admin, "Idempotency-Key": "f"},
        json={"amount_halala": 5, "reason": '=HYPERLINK("http://evil")'},
    )
    exported = await client.get(
        "/api/renters/transactions", headers=renter.renter_headers, params={"format": "csv"}
    )
    assert "'=HYPERLINK" in exported.text


async def test_bad_filters(client):
    renter = await register_renter(client)
    for params in (
        {"from": "yesterday"},
        {"format": "pdf"},
        {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"from": "2026-01-01T00:00:00"},
        {"from": "0001-01-01T00:00:00+14:00"},  # before year 1 in UTC
        {"to": "9999-12-31T23:59:59-14:00"},  # after 9999 in UTC
    ):
        answer = await client.get("/api/renters/transactions", headers=renter.renter_headers, params=params)
        assert answer.status_code == 400, params
