"""Withdrawals: a provider asks to be paid to a Saudi IBAN, an admin approves and pays or rejects."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.factories import register_provider, register_renter, settled_work

IBAN = "SA0380000000608010167519"  # a valid Saudi IBAN (mod-97 check passes)


@pytest.fixture
async def earning_provider(client, admin, database, clock):
    """A provider that earned 7500 halala from a renter's settled work."""
    renter = await register_renter(client)
    provider = await register_provider(client)
    await client.post(
        f"/api/admin/renters/{renter.id}/credit",
        headers={**admin, "Idempotency-Key": "fund"},
        json={"amount_halala": 20000, "reason": "fund"},
    )
    await settled_work(
        database,
        renter_id=renter.id,
        provider_id=provider.id,
        held=10000,
        cost=10000,
        ref="job-earn",
        now=clock.now(),
    )
    return provider


async def _earnings(client, provider):
    return (await client.get("/api/providers/earnings", headers=provider.provider_headers)).json()


class TestRequest:
    async def test_request_parks_money_in_payout_pending(self, client, earning_provider):
        answer = await client.post(
            "/api/providers/withdrawals",
            headers=earning_provider.provider_headers,
            json={"amount_halala": 5000, "iban": "sa03 8000 0000 6080 1016 7519"},
        )
        assert answer.status_code == 201, answer.text
        withdrawal = answer.json()["withdrawal"]
        assert withdrawal["status"] == "pending" and withdrawal["iban"] == "SA03 **** 7519"
        earnings = await _earnings(client, earning_provider)
        assert earnings["earnings_halala"] == 2500 and earnings["payout_pending_halala"] == 5000
        assert earnings["total_earned_halala"] == 7500
        mine = (
            await client.get("/api/providers/withdrawals", headers=earning_provider.provider_headers)
        ).json()
        assert mine["total"] == 1

    @pytest.mark.parametrize(
        ("body", "fragment"),
        [
            ({"amount_halala": 5000, "iban": "SA0380000000608010167518"}, "iban"),
            ({"amount_halala": 5000, "iban": "SA9933237829919098460414"}, "iban"),  # 99: never issued
            ({"amount_halala": 5000, "iban": "DE89370400440532013000"}, "iban"),
            ({"amount_halala": 5000, "iban": "SA03800000006080101675"}, "iban"),
            ({"amount_halala": 999, "iban": IBAN}, "amount_halala"),
            ({"amount_halala": -5000, "iban": IBAN}, "amount_halala"),
            ({"amount_halala": 50.5, "iban": IBAN}, "amount_halala"),
            ({"amount_halala": "5000", "iban": IBAN}, "amount_halala"),
            ({"iban": IBAN}, "amount_halala"),
            ({"amount_halala": 8000, "iban": IBAN}, "earnings"),
        ],
    )
    async def test_bad_requests_change_nothing(self, client, earning_provider, body, fragment):
        answer = await client.post(
            "/api/providers/withdrawals", headers=earning_provider.provider_headers, json=body
        )
        assert answer.status_code == 400
        assert fragment in answer.json()["error"]
        earnings = await _earnings(client, earning_provider)
        assert earnings["earnings_halala"] == 7500 and earnings["payout_pending_halala"] == 0

    async def test_an_iban_typed_in_arabic_indic_digits_is_read(self, client, admin, earning_provider):
        digits = "".join(map(chr, range(0x660, 0x66A)))  # Arabic-Indic zero to nine
        arabic = "SA" + IBAN[2:].translate(str.maketrans("0123456789", digits))
        answer = await client.post(
            "/api/providers/withdrawals",
            headers=earning_provider.provider_headers,
            json={"amount_halala": 1000, "iban": arabic},
        )
        assert answer.status_code == 201, answer.text
        listed = (await client.get("/api/admin/withdrawals", headers=admin)).json()
        assert listed["pending"][0]["iban"] == IBAN

    async def test_one_open_request_at_a_time(self, client, earning_provider):
        headers = earning_provider.provider_headers
        first = await client.post(
            "/api/providers/withdrawals", headers=headers, json={"amount_halala": 1000, "iban": IBAN}
        )
        second = await client.post(
            "/api/providers/withdrawals", headers=headers, json={"amount_halala": 1000, "iban": IBAN}
        )
        assert first.status_code == 201 and second.status_code == 409
        assert (await _earnings(client, earning_provider))["payout_pending_halala"] == 1000

    async def test_a_retry_under_its_key_is_the_same_request(self, client, admin, earning_provider):
        # A provider whose answer was lost asks again: it gets the withdrawal it made, even once that is paid,
        # never a 409 for its own request nor a second payout.
        headers = {**earning_provider.provider_headers, "Idempotency-Key": "payout-2026-11-001"}
        body = {"amount_halala": 2000, "iban": IBAN}

        async def ask(json: dict) -> tuple[int, dict]:
            answer = await client.post("/api/providers/withdrawals", headers=headers, json=json)
            return answer.status_code, answer.json()

        together = await asyncio.gather(ask(body), ask(body))
        assert [status for status, _ in together] == [201, 201]
        [made] = {found["withdrawal"]["id"] for _, found in together}
        assert (await _earnings(client, earning_provider))["payout_pending_halala"] == 2000
        for action, json in (("approve", None), ("paid", {"reference": "SARIE-7"})):
            answer = await client.post(f"/api/admin/withdrawals/{made}/{action}", headers=admin, json=json)
            assert answer.status_code == 200
        status, again = await ask(body)
        assert status == 201 and again["withdrawal"]["id"] == made and again["withdrawal"]["status"] == "paid"
        status, other = await ask({**body, "amount_halala": 3000})
        assert status == 409 and "different withdrawal request" in other["error"]
        earnings = await _earnings(client, earning_provider)
        assert earnings["earnings_halala"] == 5500 and earnings["payout_pending_halala"] == 0
        mine = (await client.get("/api/providers/withdrawals", headers=headers)).json()
        assert mine["total"] == 1

    async def test_renter_key_cannot_withdraw(self, client):
        renter = await register_renter(client)
        answer = await client.post(
            "/api/providers/withdrawals",
            headers=renter.renter_headers,
            json={"amount_halala": 1000, "iban": IBAN},
        )
        assert answer.status_code == 403


class TestAdmin:
    async def _request(self, client, provider, amount=5000):
        answer = await client.post(
            "/api/providers/withdrawals",
            headers=provider.provider_headers,
            json={"amount_halala": amount, "iban": IBAN},
        )
        return answer.json()["withdrawal"]["id"]

    async def test_seed_listing_shape_approve_and_pay(self, client, admin, earning_provider):
        withdrawal_id = await self._request(client, earning_provider)
        listing = (await client.get("/api/dc1/admin/withdrawals", headers=admin)).json()
        assert {"pending", "all", "summary"} <= set(listing)
        assert listing["summary"]["pending_count"] == 1 and listing["summary"]["pending_halala"] == 5000
        assert listing["pending"][0]["iban"] == IBAN  # admins see the full IBAN to pay it
        approved = await client.post(f"/api/admin/withdrawals/{withdrawal_id}/approve", headers=admin)
        assert approved.json()["withdrawal"]["status"] == "approved"
        paid = await client.post(
            f"/api/admin/withdrawals/{withdrawal_id}/paid", headers=admin, json={"reference": "SARIE-000123"}
        )
        assert paid.status_code == 200
        assert paid.json()["withdrawal"]["status"] == "paid"
        assert paid.json()["withdrawal"]["payout_reference"] == "SARIE-000123"
        earnings = await _earnings(client, earning_provider)
        assert earnings["earnings_halala"] == 2500 and earnings["payout_pending_halala"] == 0
        summary = (await client.get("/api/admin/withdrawals", headers=admin)).json()["summary"]
        assert summary["paid_count"] == 1 and summary["paid_halala"] == 5000 and summary["pending_count"] == 0
        again = await client.post(
            f"/api/admin/withdrawals/{withdrawal_id}/paid", headers=admin, json={"reference": "again"}
        )
        assert again.status_code == 409

    async def test_reject_returns_the_money(self, client, admin, earning_provider):
        withdrawal_id = await self._request(client, earning_provider)
        rejected = await client.post(
            f"/api/admin/withdrawals/{withdrawal_id}/reject",
            headers=admin,
            json={"reason": "IBAN holder name does not match"},
        )
        assert rejected.json()["withdrawal"]["status"] == "rejected"
        earnings = await _earnings(client, earning_provider)
        assert earnings["earnings_halala"] == 7500 and earnings["payout_pending_halala"] == 0
        assert (
            await client.post(f"/api/admin/withdrawals/{withdrawal_id}/approve", headers=admin)
        ).status_code == 409
        # A new request is possible once the last one is finished.
        assert await self._request(client, earning_provider, amount=7500)

    async def test_cannot_pay_before_approval(self, client, admin, earning_provider):
        withdrawal_id = await self._request(client, earning_provider)
        answer = await client.post(
            f"/api/admin/withdrawals/{withdrawal_id}/paid", headers=admin, json={"reference": "x"}
        )
        assert answer.status_code == 409
        assert answer.json() == {"error": "Cannot mark paid a withdrawal that is pending"}

    async def test_unknown_and_bad_bodies(self, client, admin, earning_provider):
        assert (await client.post("/api/admin/withdrawals/777/approve", headers=admin)).status_code == 404
        withdrawal_id = await self._request(client, earning_provider)
        empty = await client.post(f"/api/admin/withdrawals/{withdrawal_id}/reject", headers=admin, json={})
        assert empty.status_code == 400
        provider_key = await client.post(
            f"/api/admin/withdrawals/{withdrawal_id}/approve", headers=earning_provider.provider_headers
        )
        assert provider_key.status_code == 403
