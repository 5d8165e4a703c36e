"""Provider endpoints through the real HTTP surface: register, heartbeat, me, pause, resume, keys."""

from __future__ import annotations

import pytest
from sqlalchemy import select

import dcp
from dcp.models import Provider
from tests.support.factories import heartbeat, register_provider, register_renter

SEED_PROVIDER = {
    "name": "Riyadh RTX Node",
    "email": "provider@example.com",
    "gpu_model": "RTX 4090",
    "os": "linux",
    "phone": "+966500000000",
}


class TestRegister:
    @pytest.mark.parametrize("base", ["/api", "/api/dc1"])
    async def test_seed_example_returns_key_once(self, client, base):
        answer = await client.post(f"{base}/providers/register", json=SEED_PROVIDER)
        assert answer.status_code == 201
        body = answer.json()
        assert body["success"] is True
        assert isinstance(body["provider_id"], int)
        assert body["api_key"].startswith("dc1-provider-")
        assert body["installer_url"].endswith("/api/providers/download/setup?os=linux")
        assert body["api_key"] not in body["installer_url"]

    async def test_key_is_stored_only_as_a_digest(self, client, database):
        provider = await register_provider(client)
        async with database.reader() as session:
            row = (await session.execute(select(Provider).where(Provider.id == provider.id))).scalar_one()
        assert provider.key not in str(vars(row))
        assert len(row.key_digest) == 64 and row.key_digest != provider.key

    @pytest.mark.parametrize(
        ("spelling", "stored"), [("Linux", "linux"), ("ubuntu", "linux"), ("win", "windows")]
    )
    async def test_accepts_seed_spellings_of_os(self, client, spelling, stored):
        answer = await client.post("/api/providers/register", json={**SEED_PROVIDER, "os": spelling})
        assert answer.status_code == 201
        me = await client.get("/api/providers/me", headers={"x-provider-key": answer.json()["api_key"]})
        assert me.json()["provider"]["os"] == stored

    async def test_missing_fields_are_named(self, client):
        answer = await client.post("/api/providers/register", json={"name": "x"})
        assert answer.status_code == 400
        assert answer.json() == {"error": "Missing required fields: email, gpu_model, os"}

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("email", "not-an-email"),
            ("name", "n" * 101),
            ("name", "   "),
            ("name", 123),
            ("os", "solaris"),
            ("phone", "call me"),
            ("gpu_model", ["RTX"]),
        ],
    )
    async def test_bad_fields_are_rejected_and_nothing_is_created(self, client, admin, field, value):
        answer = await client.post("/api/providers/register", json={**SEED_PROVIDER, field: value})
        assert answer.status_code == 400
        assert field in answer.json()["error"]
        listing = await client.get("/api/admin/providers", headers=admin)
        assert listing.json()["total"] == 0

    async def test_second_account_with_same_email_conflicts(self, client):
        await client.post("/api/providers/register", json=SEED_PROVIDER)
        again = await client.post(
            "/api/providers/register", json={**SEED_PROVIDER, "email": " PROVIDER@Example.com "}
        )
        assert again.status_code == 409
        assert again.json() == {"error": "An account with this email already exists"}


class TestHeartbeat:
    async def test_seed_example_with_key_in_body(self, client):
        provider = await register_provider(client)
        answer = await client.post(
            "/api/dc1/providers/heartbeat",
            json={
                "api_key": provider.key,
                "gpu_status": {
                    "gpu_name": "NVIDIA RTX 4090",
                    "gpu_vram_mib": 24564,
                    "gpu_util_pct": 42,
                    "temp_c": 61,
                    "daemon_version": "0.1.0",
                    "python_version": "3.11.7",
                    "os_info": "Ubuntu 22.04",
                },
                "provider_hostname": "gpu-host-7",
                "cached_models": ["TinyLlama/TinyLlama-1.1B-Chat-v1.0"],
            },
        )
        assert answer.status_code == 200
        body = answer.json()
        assert {k: body[k] for k in ("success", "message", "status", "needs_update", "update_available")} == {
            "success": True,
            "message": "Heartbeat received",
            "status": "online",
            "needs_update": False,
            "update_available": False,
        }
        assert body["approval_status"] == "approved" and body["approved"] is True
        assert body["preload_model"] is None
        assert body["latest_version"] == body["min_version"] == dcp.__version__
        assert body["timestamp"].endswith("Z")
        me = (await client.get("/api/providers/me", headers=provider.provider_headers)).json()["provider"]
        assert me["gpu"]["gpu_name"] == "NVIDIA RTX 4090" and me["gpu"]["gpu_util_pct"] == 42
        assert me["cached_models"] == ["TinyLlama/TinyLlama-1.1B-Chat-v1.0"]
        assert me["hostname"] == "gpu-host-7" and me["is_online"] is True

    async def test_what_a_beat_leaves_out_about_its_daemon_is_kept(self, client):
        provider = await register_provider(client)
        status = {"gpu_name": "NVIDIA RTX 4090", "daemon_version": "0.1.0", "os_info": "Ubuntu 22.04"}
        full = {"gpu_status": status, "provider_hostname": "gpu-host-7", "cached_models": ["gemma3-270m"]}
        minimal = {"gpu_status": {"gpu_name": "NVIDIA RTX 4090", "gpu_util_pct": 5}}  # as the seeds' examples

        headers = provider.provider_headers

        async def beat(body: dict) -> None:
            answer = await client.post("/api/providers/heartbeat", headers=headers, json=body)
            assert answer.status_code == 200

        async def me() -> dict:
            return (await client.get("/api/providers/me", headers=headers)).json()["provider"]

        await beat(full)
        await beat(minimal)
        seen = await me()
        assert (seen["hostname"], seen["cached_models"]) == ("gpu-host-7", ["gemma3-270m"])
        assert seen["daemon_version"] == "0.1.0"
        assert seen["gpu"]["gpu_util_pct"] == 5  # readings are the latest beat's
        await beat({**minimal, "cached_models": []})
        assert (await me())["cached_models"] == []

    async def test_the_checks_and_their_order(self, client):
        # Served by kit/fast_route.py: the answers FastAPI's own handler gave, the body's JSON read first.
        provider = await register_provider(client)
        key, as_json = {"x-provider-key": provider.key}, {"content-type": "application/json"}

        async def error(headers: dict, content: bytes) -> tuple[int, str]:
            answer = await client.post("/api/providers/heartbeat", headers=headers, content=content)
            return answer.status_code, answer.json()["error"]

        assert await error(as_json, b"{not json") == (400, "Invalid JSON body")
        assert await error(as_json, b'{"slots": "x"}') == (
            401,
            "A provider API key is required (x-provider-key header or ?key=)",
        )
        assert await error(key, b"") == (400, "Missing request body: JSON expected")
        assert await error({**key, **as_json}, b"\x9a\x00\xff") == (
            400,
            "There was an error parsing the body",
        )
        not_an_object = (
            "Invalid request body: Input should be a valid dictionary or object to extract fields from"
        )
        assert await error({**key, "content-type": "text/plain"}, b"{}") == (400, not_an_object)
        unknown = {"x-provider-key": "dc1-provider-" + "x" * 43, **as_json}
        assert await error(unknown, b"{}") == (401, "Invalid or revoked API key")
        ok = await client.post("/api/providers/heartbeat", headers=key, json={"slots": 2})
        assert ok.status_code == 200 and ok.headers["content-type"] == "application/json"
        assert ok.json()["message"] == "Heartbeat received"

    async def test_old_daemon_is_told_to_update(self, client):
        provider = await register_provider(client)
        body = (await heartbeat(client, provider, daemon_version="0.0.1")).json()
        assert body["needs_update"] is True and body["update_available"] is True

    async def test_several_gpus_and_no_gpu(self, client):
        provider = await register_provider(client)
        gpus = [
            {"gpu_name": "NVIDIA H100", "gpu_vram_mib": 81559},
            {"gpu_name": "NVIDIA H100", "gpu_vram_mib": 81559},
        ]
        answer = await client.post(
            "/api/providers/heartbeat", headers=provider.provider_headers, json={"gpus": gpus}
        )
        assert answer.status_code == 200
        me = (await client.get("/api/providers/me", headers=provider.provider_headers)).json()["provider"]
        assert me["gpu"]["gpu_count"] == 2 and me["gpu"]["gpu_vram_mib"] == 81559
        cpu_only = await register_provider(client)
        await client.post("/api/providers/heartbeat", headers=cpu_only.provider_headers, json={})
        me = (await client.get("/api/providers/me", headers=cpu_only.provider_headers)).json()["provider"]
        assert me["gpu"] == {
            "gpu_name": None,
            "gpu_vram_mib": None,
            "gpu_count": 0,
            "gpus": [],
            "gpu_util_pct": None,
            "temp_c": None,
        }
        assert me["is_online"] is True

    @pytest.mark.parametrize("bad", [{"gpu_util_pct": 150}, {"temp_c": "hot"}, {"gpu_vram_mib": -1}])
    async def test_impossible_telemetry_is_rejected(self, client, bad):
        provider = await register_provider(client)
        answer = await heartbeat(client, provider, **bad)
        assert answer.status_code == 400
        assert "gpu_status" in answer.json()["error"]
        me = (await client.get("/api/providers/me", headers=provider.provider_headers)).json()["provider"]
        assert me["last_heartbeat"] is None

    async def test_liveness_follows_the_threshold(self, client, clock):
        provider = await register_provider(client)
        await heartbeat(client, provider)
        clock.advance(seconds=89)
        live = (await client.get("/api/renters/available-providers")).json()["providers"][0]
        assert live["is_live"] is True
        clock.advance(seconds=2)
        stale = (await client.get("/api/renters/available-providers")).json()["providers"][0]
        assert stale["is_live"] is False and stale["status"] == "offline"


class TestAuth:
    async def test_no_key(self, client):
        answer = await client.get("/api/providers/me")
        assert answer.status_code == 401
        assert "key" in answer.json()["error"]

    async def test_unknown_key(self, client):
        answer = await client.get("/api/providers/me", headers={"x-provider-key": "dc1-provider-nope"})
        assert answer.status_code == 401

    async def test_renter_key_is_the_wrong_role(self, client):
        renter = await register_renter(client)
        answer = await client.post("/api/providers/heartbeat", headers=renter.renter_headers, json={})
        assert answer.status_code == 403
        assert answer.json() == {"error": "This endpoint needs a provider key; a renter key was given"}

    @pytest.mark.parametrize("how", ["header", "query", "bearer", "legacy-prefix"])
    async def test_key_travels_every_documented_way(self, client, how):
        provider = await register_provider(client)
        key = provider.key
        kwargs: dict = {
            "header": {"headers": {"x-provider-key": key}},
            "query": {"params": {"key": key}},
            "bearer": {"headers": {"authorization": f"Bearer {key}"}},
            "legacy-prefix": {"headers": {"x-provider-key": key.replace("dc1-", "dcp-", 1)}},
        }[how]
        assert (await client.get("/api/providers/me", **kwargs)).status_code == 200

    async def test_rotation_revokes_the_old_key(self, client):
        provider = await register_provider(client)
        rotated = await client.post("/api/providers/rotate-key", headers=provider.provider_headers)
        assert rotated.status_code == 200
        new_key = rotated.json()["api_key"]
        assert new_key.startswith("dc1-provider-") and new_key != provider.key
        assert (await client.get("/api/providers/me", headers=provider.provider_headers)).status_code == 401
        assert (await client.get("/api/providers/me", headers={"x-provider-key": new_key})).status_code == 200


class TestPause:
    async def test_pause_and_resume_with_key_in_body(self, client):
        provider = await register_provider(client)
        await heartbeat(client, provider)
        paused = await client.post("/api/dc1/providers/pause", json={"key": provider.key})
        assert paused.status_code == 200
        assert paused.json() == {"success": True, "status": "paused", "paused": True}
        live = await client.get("/api/renters/available-providers", params={"live_only": "true"})
        assert live.json()["total"] == 0
        resumed = await client.post("/api/providers/resume", json={"key": provider.key})
        assert resumed.json() == {"success": True, "status": "online", "paused": False}
        live = await client.get("/api/renters/available-providers", params={"live_only": "true"})
        assert live.json()["total"] == 1

    async def test_suspended_provider_learns_it_from_its_heartbeat(self, client, admin):
        provider = await register_provider(client)
        await client.post(f"/api/admin/providers/{provider.id}/suspend", headers=admin)
        body = (await heartbeat(client, provider)).json()
        assert body["approval_status"] == "suspended" and body["approved"] is False
        assert body["status"] == "suspended"
        listing = await client.get("/api/renters/available-providers")
        assert listing.json()["total"] == 0


class TestPreload:
    async def test_daemons_are_asked_to_prepare_the_chosen_model_until_they_have_it(self, client, settings):
        settings.daemon.preload_model = "gemma3-270m"
        provider = await register_provider(client)
        assert (await heartbeat(client, provider)).json()["preload_model"] == "gemma3-270m"
        answer = await client.post(
            "/api/providers/heartbeat",
            headers=provider.provider_headers,
            json={"cached_models": ["gemma3-270m"]},
        )
        assert answer.json()["preload_model"] is None
