"""The API key cache: served without a lookup for seconds, forgotten at once on rotation and suspension."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import update

from dcp.app import create_app
from dcp.models import Provider, Renter
from tests.support.factories import register_provider, register_renter

# GET /api/jobs/{id} takes any caller's key from the cache: 404 for a job that does not exist means the key
# was accepted, 401 revoked, 403 suspended.
_PROBE = "/api/jobs/job-that-does-not-exist"


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
async def cached(client, settings, database, clock, ticks) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose key cache runs on ``ticks`` (the ``client`` fixture empties the tables)."""
    settings.auth_cache_seconds = 5
    app = create_app(settings, db=database, clock=clock)
    app.state.key_cache.clock = ticks
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def _elsewhere(database, statement) -> None:
    """A change another replica makes: straight to the database, past this process's ORM."""
    async with database.writer() as session:
        await session.execute(statement)
        await session.commit()


class TestRenterKeys:
    async def test_a_key_is_served_from_the_cache_until_it_expires(self, cached, database, ticks):
        renter = await register_renter(cached)
        assert (await cached.get(_PROBE, headers=renter.renter_headers)).status_code == 404
        await _elsewhere(database, update(Renter).where(Renter.id == renter.id).values(key_digest="0" * 64))
        ticks.now += 4.9
        assert (await cached.get(_PROBE, headers=renter.renter_headers)).status_code == 404  # cache hit
        ticks.now += 0.2
        assert (await cached.get(_PROBE, headers=renter.renter_headers)).status_code == 401

    async def test_rotation_revokes_the_old_key_at_once(self, cached):
        renter = await register_renter(cached)
        assert (await cached.get(_PROBE, headers=renter.renter_headers)).status_code == 404
        rotated = await cached.post("/api/renters/rotate-key", headers=renter.renter_headers)
        assert (await cached.get(_PROBE, headers=renter.renter_headers)).status_code == 401
        new_headers = {"x-renter-key": rotated.json()["api_key"]}
        assert (await cached.get(_PROBE, headers=new_headers)).status_code == 404

    async def test_suspension_and_activation_apply_at_once(self, cached, admin):
        renter = await register_renter(cached)
        assert (await cached.get(_PROBE, headers=renter.renter_headers)).status_code == 404
        await cached.post(f"/api/admin/renters/{renter.id}/suspend", headers=admin)
        refused = await cached.get(_PROBE, headers=renter.renter_headers)
        assert refused.status_code == 403
        assert refused.json() == {"error": "This renter account is suspended"}
        await cached.post(f"/api/admin/renters/{renter.id}/activate", headers=admin)
        assert (await cached.get(_PROBE, headers=renter.renter_headers)).status_code == 404

    async def test_admin_rotation_revokes_at_once(self, cached, admin):
        renter = await register_renter(cached)
        assert (await cached.get(_PROBE, headers=renter.renter_headers)).status_code == 404
        await cached.post(f"/api/admin/renters/{renter.id}/rotate-key", headers=admin)
        assert (await cached.get(_PROBE, headers=renter.renter_headers)).status_code == 401


class TestProviderKeys:
    async def test_rotation_revokes_the_old_key_at_once(self, cached, admin):
        provider = await register_provider(cached)
        assert (await cached.get(_PROBE, headers=provider.provider_headers)).status_code == 404
        await cached.post(f"/api/admin/providers/{provider.id}/rotate-key", headers=admin)
        assert (await cached.get(_PROBE, headers=provider.provider_headers)).status_code == 401

    async def test_own_rotation_revokes_at_once(self, cached):
        provider = await register_provider(cached)
        assert (await cached.get(_PROBE, headers=provider.provider_headers)).status_code == 404
        await cached.post("/api/providers/rotate-key", headers=provider.provider_headers)
        assert (await cached.get(_PROBE, headers=provider.provider_headers)).status_code == 401

    async def test_a_revoked_key_expires_from_the_cache(self, cached, database, ticks):
        provider = await register_provider(cached)
        assert (await cached.get(_PROBE, headers=provider.provider_headers)).status_code == 404
        await _elsewhere(
            database, update(Provider).where(Provider.id == provider.id).values(key_digest="0" * 64)
        )
        assert (await cached.get(_PROBE, headers=provider.provider_headers)).status_code == 404
        ticks.now += 5
        assert (await cached.get(_PROBE, headers=provider.provider_headers)).status_code == 401
