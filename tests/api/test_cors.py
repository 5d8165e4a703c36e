"""Cross-origin calls: a web app on its own origin calls /api and /v1 with its key in a header; the web pages,
signed in by cookie, answer no other origin."""

from __future__ import annotations

import httpx

from dcp.app import create_app
from tests.support.factories import register_renter

ORIGIN = "https://app.example.sa"


async def test_a_preflight_allows_the_key_headers_without_credentials(client):
    answer = await client.options(
        "/api/jobs/submit",
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-renter-key, content-type, idempotency-key",
        },
    )
    assert answer.status_code == 200
    assert answer.headers["access-control-allow-origin"] == "*"
    allowed = answer.headers["access-control-allow-headers"].lower()
    assert {"x-renter-key", "content-type", "idempotency-key", "authorization"} <= {
        header.strip() for header in allowed.split(",")
    }
    assert "POST" in answer.headers["access-control-allow-methods"]
    assert "access-control-allow-credentials" not in answer.headers


async def test_answers_and_refusals_are_readable_by_the_calling_page(client):
    renter = await register_renter(client)
    ok = await client.get("/api/renters/balance", headers={**renter.renter_headers, "origin": ORIGIN})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in ok.headers["access-control-expose-headers"]
    refused = await client.get("/api/renters/balance", headers={"x-renter-key": "nope", "origin": ORIGIN})
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"
    models = await client.get("/v1/models", headers={**renter.renter_headers, "origin": ORIGIN})
    assert models.headers["access-control-allow-origin"] == "*"


async def test_web_pages_answer_no_other_origin(client):
    page = await client.get("/", headers={"origin": ORIGIN})
    assert page.status_code == 200 and "access-control-allow-origin" not in page.headers
    preflight = await client.options(
        "/renter/jobs/new", headers={"origin": ORIGIN, "access-control-request-method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


async def test_operators_can_name_the_origins(settings, database, clock):
    settings.cors_origins = [ORIGIN]
    app = create_app(settings, db=database, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        named = await http.get("/api/renters/available-providers", headers={"origin": ORIGIN})
        other = await http.get("/api/renters/available-providers", headers={"origin": "https://evil.example"})
    assert named.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-origin" not in other.headers
    settings.cors_origins = []
    app = create_app(settings, db=database, clock=clock)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        closed = await http.get("/api/renters/available-providers", headers={"origin": ORIGIN})
    assert "access-control-allow-origin" not in closed.headers
