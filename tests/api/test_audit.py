"""The audit trail: every administrative action (refused ones too) and every money movement says who did it,
when, and from which address."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from dcp.db.engine import Database
from dcp.models import LedgerTransaction
from tests.support.factories import credit, funded_renter, llm_job, online_provider, register_renter, submit


async def test_admin_actions_are_recorded_with_their_outcome(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    renter = await register_renter(client)
    await credit(client, admin, renter, 500)
    refused = await client.post(
        f"/api/admin/renters/{renter.id}/suspend", headers={"x-admin-token": "dc1-admin-" + "w" * 40}
    )
    assert refused.status_code == 401
    trail = (await client.get("/api/admin/audit", headers=admin)).json()
    assert [(e["actor"], e["action"], e["status"]) for e in trail["events"]] == [
        ("anonymous", f"POST /api/admin/renters/{renter.id}/suspend", 401),
        ("admin", f"POST /api/admin/renters/{renter.id}/credit", 200),
    ]
    assert all(e["client_ip"] == "127.0.0.1" and e["request_id"] for e in trail["events"])


async def test_reading_is_not_an_action(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    await client.get("/api/admin/dashboard", headers=admin)
    assert (await client.get("/api/admin/audit", headers=admin)).json()["total"] == 0


async def test_the_trail_is_for_admins_only(client: httpx.AsyncClient) -> None:
    renter = await register_renter(client)
    assert (await client.get("/api/admin/audit", headers=renter.renter_headers)).status_code == 403


async def test_money_movements_name_their_actor(
    client: httpx.AsyncClient, admin: dict[str, str], database: Database
) -> None:
    await online_provider(client)
    renter = await funded_renter(client, admin)
    await submit(client, renter, llm_job())
    async with database.reader() as session:
        rows = (
            (await session.execute(select(LedgerTransaction).order_by(LedgerTransaction.id))).scalars().all()
        )
    assert [(t.kind, t.actor, t.client_ip) for t in rows] == [
        ("topup", "admin", "127.0.0.1"),
        ("hold", f"renter:{renter.id}", "127.0.0.1"),
    ]
