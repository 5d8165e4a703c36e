"""Provider per-minute prices within bounds, and admin per-token /v1 prices."""

from __future__ import annotations

import pytest

from tests.support.factories import heartbeat, register_provider


async def test_provider_sets_prices_within_bounds_and_the_market_shows_them(client):
    provider = await register_provider(client)
    await heartbeat(client, provider)
    sheet = (await client.get("/api/providers/prices", headers=provider.provider_headers)).json()
    assert sheet["bounds"]["llm_inference"] == {"min": 8, "max": 45}
    changed = await client.put(
        "/api/providers/prices",
        headers=provider.provider_headers,
        json={"llm_inference": 18, "custom_container": 12},
    )
    assert changed.status_code == 200
    assert changed.json()["price_per_minute_halala"]["llm_inference"] == 18
    market = (await client.get("/api/renters/available-providers")).json()["providers"][0]
    assert market["price_per_minute_halala"] == {
        "llm_inference": 18,
        "image_generation": 20,
        "vllm_serve": 20,
        "custom_container": 12,
    }
    reset = await client.put(
        "/api/providers/prices", headers=provider.provider_headers, json={"llm_inference": None}
    )
    assert reset.json()["custom"] == {"custom_container": 12}


@pytest.mark.parametrize(
    "body",
    [
        {"llm_inference": 7},
        {"llm_inference": 46},
        {"llm_inference": 15.5},
        {"llm_inference": "15"},
        {"gpu_hours": 3},
    ],
)
async def test_out_of_bounds_prices_change_nothing(client, body):
    provider = await register_provider(client)
    answer = await client.put("/api/providers/prices", headers=provider.provider_headers, json=body)
    assert answer.status_code == 400
    sheet = (await client.get("/api/providers/prices", headers=provider.provider_headers)).json()
    assert sheet["custom"] == {}


async def test_admin_sets_per_token_prices(client, admin):
    listing = (await client.get("/api/admin/model-prices", headers=admin)).json()
    assert listing["prices"] == [] and listing["default"]["input_per_million_halala"] == 100
    model = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
    answer = await client.put(
        "/api/admin/model-prices",
        headers=admin,
        json={"model": model, "input_per_million_halala": 50, "output_per_million_halala": 150},
    )
    assert answer.status_code == 200 and answer.json()["model"] == model
    listing = (await client.get("/api/admin/model-prices", headers=admin)).json()
    assert [p["model"] for p in listing["prices"]] == [model]
    bad = await client.put(
        "/api/admin/model-prices",
        headers=admin,
        json={"model": model, "input_per_million_halala": -1, "output_per_million_halala": 1},
    )
    assert bad.status_code == 400
    reset = await client.delete("/api/admin/model-prices", headers=admin, params={"model": model})
    assert reset.status_code == 200 and reset.json()["prices"] == []
    again = await client.delete("/api/admin/model-prices", headers=admin, params={"model": model})
    assert again.status_code == 404
