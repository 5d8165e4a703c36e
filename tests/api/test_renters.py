"""Renter endpoints: register, me, balance, keys, and the public marketplace listing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from dcp.models import Renter
from tests.support.factories import credit, heartbeat, register_provider, register_renter

FATIMA = {
    "name": "Fatima Al-Saud",
    "email": "fatima@example.sa",
    "organization": "Riyadh AI Lab",
    "use_case": "llm_inference",
    "phone": "+966500000001",
}


class TestRegister:
    @pytest.mark.parametrize("base", ["/api", "/api/dc1"])
    async def test_seed_example(self, client, base):
        answer = await client.post(f"{base}/renters/register", json=FATIMA)
        assert answer.status_code == 201
        body = answer.json()
        assert body["success"] is True and isinstance(body["renter_id"], int)
        assert body["api_key"].startswith("dc1-renter-")
        assert body["message"] == "Welcome Fatima Al-Saud! Save your API key — it won't be shown again."

    async def test_only_name_and_email_are_required(self, client):
        answer = await client.post(
            "/api/renters/register", json={"name": "Acme AI", "email": "renter@example.com"}
        )
        assert answer.status_code == 201

    async def test_key_is_stored_only_as_a_digest(self, client, database):
        renter = await register_renter(client)
        async with database.reader() as session:
            row = (await session.execute(select(Renter).where(Renter.id == renter.id))).scalar_one()
        assert renter.key not in str(vars(row))

    async def test_missing_fields_are_named_like_the_seed(self, client):
        answer = await client.post("/api/renters/register", json={})
        assert answer.status_code == 400
        assert answer.json() == {"error": "Missing required fields: name, email"}

    @pytest.mark.parametrize(
        ("field", "value"),
        [("email", "fatima@"), ("organization", "o" * 201), ("name", None), ("phone", "+1"), ("use_case", 7)],
    )
    async def test_bad_fields(self, client, admin, field, value):
        answer = await client.post("/api/renters/register", json={**FATIMA, field: value})
        assert answer.status_code == 400
        assert field in answer.json()["error"]
        assert (await client.get("/api/admin/renters", headers=admin)).json()["total"] == 0

    async def test_duplicate_email(self, client):
        await client.post("/api/renters/register", json=FATIMA)
        again = await client.post("/api/renters/register", json={**FATIMA, "email": "Fatima@Example.SA"})
        assert again.status_code == 409

    async def test_starter_balance_is_credited_through_the_ledger(self, client, settings):
        settings.starter_balance_halala = 500
        renter = await register_renter(client)
        balance = (await client.get("/api/renters/balance", headers=renter.renter_headers)).json()
        assert balance["balance_halala"] == 500 and balance["balance_sar"] == "5.00"


class TestWallet:
    async def test_me_and_balance(self, client, admin):
        renter = await register_renter(client, **FATIMA)
        await credit(client, admin, renter, 12345)
        balance = await client.get("/api/dc1/renters/balance", headers=renter.renter_headers)
        assert balance.json() == {
            "balance_halala": 12345,
            "balance_sar": "123.45",
            "held_halala": 0,
            "held_sar": "0.00",
            "total_halala": 12345,
        }
        me = await client.get("/api/renters/me", params={"key": renter.key})
        assert me.status_code == 200
        assert me.json()["renter"]["balance_halala"] == 12345
        assert me.json()["renter"]["email"] == "fatima@example.sa"
        assert me.json()["recent_jobs"] == []

    async def test_provider_key_is_the_wrong_role(self, client):
        provider = await register_provider(client)
        answer = await client.get("/api/renters/balance", headers={"x-renter-key": provider.key})
        assert answer.status_code == 403

    async def test_suspended_renter_is_refused(self, client, admin):
        renter = await register_renter(client)
        await client.post(f"/api/admin/renters/{renter.id}/suspend", headers=admin)
        answer = await client.get("/api/renters/me", headers=renter.renter_headers)
        assert answer.status_code == 403
        assert answer.json() == {"error": "This renter account is suspended"}
        await client.post(f"/api/admin/renters/{renter.id}/activate", headers=admin)
        assert (await client.get("/api/renters/me", headers=renter.renter_headers)).status_code == 200

    async def test_rotation_revokes_the_old_key(self, client):
        renter = await register_renter(client)
        new_key = (await client.post("/api/renters/rotate-key", headers=renter.renter_headers)).json()[
            "api_key"
        ]
        assert (await client.get("/api/renters/me", headers=renter.renter_headers)).status_code == 401
        assert (await client.get("/api/renters/me", headers={"x-renter-key": new_key})).status_code == 200

    async def test_garbage_key(self, client):
        answer = await client.get("/api/renters/me", headers={"x-renter-key": "hello"})
        assert answer.status_code == 401
        assert answer.json() == {"error": "Invalid API key"}


class TestAvailableProviders:
    async def test_public_listing_with_seed_fields(self, client):
        provider = await register_provider(client, name="Riyadh RTX Node")
        await heartbeat(client, provider, gpu_vram_mib=24564)
        await register_provider(client, name="Jeddah Node", gpu_model="RTX 3060")  # never seen
        listing = (await client.get("/api/dc1/renters/available-providers")).json()
        assert listing["total"] == 2
        live = next(p for p in listing["providers"] if p["is_live"])
        assert live["id"] == provider.id and live["name"] == "Riyadh RTX Node"
        assert live["vram_gb"] == 24 and live["status"] == "online"
        assert live["price_per_minute_halala"] == {
            "llm_inference": 15,
            "image_generation": 20,
            "vllm_serve": 20,
            "custom_container": 10,
        }
        offline = next(p for p in listing["providers"] if not p["is_live"])
        assert offline["vram_gb"] == 0 and offline["status"] == "offline"

    async def test_filters_and_pages(self, client):
        for vram in (8192, 16384, 24576):
            provider = await register_provider(client, gpu_model=f"GPU {vram}")
            await heartbeat(client, provider, gpu_vram_mib=vram, gpu_name=f"NVIDIA {vram}")
        big = (await client.get("/api/renters/available-providers", params={"min_vram_gb": 16})).json()
        assert big["total"] == 2
        named = (
            await client.get("/api/renters/available-providers", params={"gpu_model": "nvidia 8192"})
        ).json()
        assert named["total"] == 1
        page = (await client.get("/api/renters/available-providers", params={"limit": 1, "offset": 1})).json()
        assert page["total"] == 3 and len(page["providers"]) == 1 and page["offset"] == 1

    async def test_a_cursor_pages_through_providers_coming_and_going(self, client):
        providers = [await register_provider(client) for _ in range(5)]
        for provider in providers:
            await heartbeat(client, provider)
        live = {"live_only": True, "limit": 2}
        first = (await client.get("/api/renters/available-providers", params=live)).json()
        # Between pages the first provider pauses (leaving the live listing) and another joins: an offset of
        # 2 would now skip the third provider; the cursor goes on after the second.
        paused = await client.post("/api/providers/pause", headers=providers[0].provider_headers)
        assert paused.status_code == 200
        newcomer = await register_provider(client)
        await heartbeat(client, newcomer)
        seen, page = [p["id"] for p in first["providers"]], first
        while page["next_after"] is not None:
            params = {**live, "after": page["next_after"]}
            page = (await client.get("/api/renters/available-providers", params=params)).json()
            seen += [p["id"] for p in page["providers"]]
        assert seen == [p.id for p in providers] + [newcomer.id]
        assert page["total"] == 5 and len(page["providers"]) < 2

    @pytest.mark.parametrize(
        "params",
        [
            {"limit": 0},
            {"limit": 1000},
            {"offset": -1},
            {"min_vram_gb": "big"},
            {"after": -1},
            {"after": "x"},
        ],
    )
    async def test_bad_query(self, client, params):
        answer = await client.get("/api/renters/available-providers", params=params)
        assert answer.status_code == 400
        assert "error" in answer.json()
