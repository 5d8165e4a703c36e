"""Admin endpoints: token auth, the dashboard's seed shape, provider and renter administration, credits."""

from __future__ import annotations

import pytest

from tests.conftest import ADMIN_TOKEN
from tests.support.factories import credit, heartbeat, register_provider, register_renter

SEED_STATS = set(
    [
        "total_providers",
        "online_now",
        "offline",
        "total_renters",
        "active_renters",
        "total_renter_balance_halala",
        "total_jobs",
        "completed_jobs",
        "failed_jobs",
        "active_jobs",
        "total_revenue_halala",
        "total_dc1_fees_halala",
        "today_revenue_halala",
        "today_dc1_fees_halala",
        "today_jobs",
        "timestamp",
    ]
)


class TestAuth:
    async def test_token_by_header_or_bearer(self, client):
        assert (
            await client.get("/api/admin/dashboard", headers={"x-admin-token": ADMIN_TOKEN})
        ).status_code == 200
        bearer = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        assert (await client.get("/api/dc1/admin/dashboard", headers=bearer)).status_code == 200

    async def test_missing_and_wrong_token(self, client):
        assert (await client.get("/api/admin/dashboard")).status_code == 401
        wrong = await client.get("/api/admin/dashboard", headers={"x-admin-token": "nope"})
        assert wrong.status_code == 401 and wrong.json() == {"error": "Invalid admin token"}

    async def test_renter_key_is_the_wrong_role(self, client):
        renter = await register_renter(client)
        answer = await client.get("/api/admin/dashboard", headers=renter.renter_headers)
        assert answer.status_code == 403


class TestDashboard:
    async def test_seed_shape_from_real_rows(self, client, admin, clock):
        online = await register_provider(client, gpu_model="RTX 4090")
        await heartbeat(client, online, gpu_name="NVIDIA RTX 4090")
        await register_provider(client, gpu_model="RTX 3090")
        renter = await register_renter(client)
        await register_renter(client)
        await credit(client, admin, renter, 5000)
        body = (await client.get("/api/dc1/admin/dashboard", headers=admin)).json()
        assert set(body) == {"stats", "gpu_breakdown", "recent_signups", "recent_heartbeats"}
        stats = body["stats"]
        assert set(stats) == SEED_STATS
        assert stats["total_providers"] == 2 and stats["online_now"] == 1 and stats["offline"] == 1
        assert stats["total_renters"] == 2 and stats["active_renters"] == 1
        assert stats["total_renter_balance_halala"] == 5000
        assert stats["total_revenue_halala"] == 0 and stats["total_jobs"] == 0
        breakdown = {row["gpu_model"]: row for row in body["gpu_breakdown"]}
        assert breakdown["NVIDIA RTX 4090"] == {"gpu_model": "NVIDIA RTX 4090", "total": 1, "online": 1}
        assert breakdown["RTX 3090"]["online"] == 0
        assert len(body["recent_signups"]) == 4
        assert [h["provider_id"] for h in body["recent_heartbeats"]] == [online.id]
        clock.advance(minutes=5)
        later = (await client.get("/api/admin/dashboard", headers=admin)).json()
        assert later["stats"]["online_now"] == 0
        assert later["recent_heartbeats"][0]["is_online"] is False


class TestProviders:
    async def test_search_approve_suspend(self, client, admin, settings):
        settings.provider_auto_approve = False
        provider = await register_provider(client, name="Dammam Farm", email="farm@dammam.sa")
        await register_provider(client, name="Other")
        found = (await client.get("/api/admin/providers", headers=admin, params={"q": "dammam"})).json()
        assert found["total"] == 1 and found["providers"][0]["approval_status"] == "pending"
        pending = (await heartbeat(client, provider)).json()
        assert pending["approved"] is False and pending["status"] == "pending"
        approved = await client.post(f"/api/admin/providers/{provider.id}/approve", headers=admin)
        assert approved.json()["provider"]["approval_status"] == "approved"
        assert (await heartbeat(client, provider)).json()["approved"] is True
        listed = await client.get(
            "/api/admin/providers", headers=admin, params={"approval_status": "approved"}
        )
        assert listed.json()["total"] == 1

    async def test_rotate_any_key(self, client, admin):
        provider = await register_provider(client)
        answer = await client.post(f"/api/admin/providers/{provider.id}/rotate-key", headers=admin)
        assert answer.status_code == 200
        assert (await client.get("/api/providers/me", headers=provider.provider_headers)).status_code == 401
        new = {"x-provider-key": answer.json()["api_key"]}
        assert (await client.get("/api/providers/me", headers=new)).status_code == 200

    @pytest.mark.parametrize("path", ["/api/admin/providers/999", "/api/admin/renters/999"])
    async def test_unknown_ids(self, client, admin, path):
        answer = await client.get(path, headers=admin)
        assert answer.status_code == 404

    @pytest.mark.parametrize("provider_id", ["0", "-1", "abc", "99999999999999999999999"])
    async def test_impossible_ids(self, client, admin, provider_id):
        answer = await client.post(f"/api/admin/providers/{provider_id}/approve", headers=admin)
        assert answer.status_code == 400


class TestRenters:
    async def test_list_search_and_rotate(self, client, admin):
        renter = await register_renter(client, name="Acme AI", organization="Acme")
        await register_renter(client, name="Other", organization="Elsewhere")
        await credit(client, admin, renter, 250)
        found = (await client.get("/api/admin/renters", headers=admin, params={"q": "acme"})).json()
        assert found["total"] == 1 and found["renters"][0]["balance_halala"] == 250
        for literal in ("%", "_", "acme%"):  # searched for as typed, not as wildcards
            found = (await client.get("/api/admin/renters", headers=admin, params={"q": literal})).json()
            assert found["total"] == 0, literal
        one = (await client.get(f"/api/admin/renters/{renter.id}", headers=admin)).json()
        assert one["renter"]["organization"] == "Acme"
        rotated = await client.post(f"/api/admin/renters/{renter.id}/rotate-key", headers=admin)
        assert rotated.json()["api_key"].startswith("dc1-renter-")
        assert (await client.get("/api/renters/me", headers=renter.renter_headers)).status_code == 401


class TestCredit:
    async def test_credit_is_idempotent(self, client, admin):
        renter = await register_renter(client)
        request = {"amount_halala": 1000, "reason": "bank transfer #77"}
        headers = {**admin, "Idempotency-Key": "transfer-77"}
        first = await client.post(f"/api/admin/renters/{renter.id}/credit", headers=headers, json=request)
        again = await client.post(f"/api/admin/renters/{renter.id}/credit", headers=headers, json=request)
        assert first.status_code == again.status_code == 200
        assert first.json()["duplicate"] is False and again.json()["duplicate"] is True
        assert first.json()["transaction_id"] == again.json()["transaction_id"]
        balance = (await client.get("/api/renters/balance", headers=renter.renter_headers)).json()
        assert balance["balance_halala"] == 1000

    async def test_reusing_a_key_for_another_amount_conflicts(self, client, admin):
        renter = await register_renter(client)
        headers = {**admin, "Idempotency-Key": "transfer-78"}
        url = f"/api/admin/renters/{renter.id}/credit"
        await client.post(url, headers=headers, json={"amount_halala": 1000, "reason": "x"})
        clash = await client.post(url, headers=headers, json={"amount_halala": 2000, "reason": "x"})
        assert clash.status_code == 409
        assert (await client.get("/api/renters/balance", headers=renter.renter_headers)).json()[
            "balance_halala"
        ] == 1000

    @pytest.mark.parametrize("amount", [-100, 0, 10.5, 100.0, "100", "ten", None, 10**12, True], ids=repr)
    async def test_bad_amounts_change_nothing(self, client, admin, amount):
        renter = await register_renter(client)
        answer = await client.post(
            f"/api/admin/renters/{renter.id}/credit",
            headers={**admin, "Idempotency-Key": "k"},
            json={"amount_halala": amount, "reason": "x"},
        )
        assert answer.status_code == 400
        assert "amount_halala" in answer.json()["error"]
        assert (await client.get("/api/renters/balance", headers=renter.renter_headers)).json()[
            "balance_halala"
        ] == 0

    async def test_needs_a_reason_and_a_key(self, client, admin):
        renter = await register_renter(client)
        url = f"/api/admin/renters/{renter.id}/credit"
        no_reason = await client.post(
            url, headers={**admin, "Idempotency-Key": "a"}, json={"amount_halala": 5}
        )
        assert no_reason.status_code == 400
        no_key = await client.post(url, headers=admin, json={"amount_halala": 5, "reason": "x"})
        assert no_key.status_code == 400 and "idempotency_key" in no_key.json()["error"]

    async def test_unknown_renter(self, client, admin):
        answer = await client.post(
            "/api/admin/renters/4242/credit",
            headers={**admin, "Idempotency-Key": "z"},
            json={"amount_halala": 5, "reason": "x"},
        )
        assert answer.status_code == 404
