"""Holds, settlement and refunds: one way each, at most once per piece of work, the split always adds up."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dcp.billing import ledger, settlement
from dcp.billing.errors import InsufficientFunds
from dcp.billing.ledger import PLATFORM, Account, Leg, TxKind
from dcp.billing.pricing import cost_of_run, quote, split
from dcp.config import PricingSettings

RENTER, PROVIDER = 1, 2


class TestPricing:
    def test_seed_quote(self):
        # The seed's docs page: a 3-minute llm job at 15 halala/minute is quoted 45... at standard class.
        assert quote(per_minute=15, minutes=3, percent=100) == 45
        assert quote(per_minute=15, minutes=3, percent=120) == 54
        assert quote(per_minute=15, minutes=1, percent=90) == 14  # 13.5 rounds up

    def test_per_second_billing_rounds_up_and_is_capped(self):
        assert cost_of_run(per_minute=15, seconds=60, percent=100, cap=1000) == 15
        assert cost_of_run(per_minute=15, seconds=1, percent=100, cap=1000) == 1
        assert cost_of_run(per_minute=15, seconds=0, percent=100, cap=1000) == 0
        assert cost_of_run(per_minute=15, seconds=10_000, percent=100, cap=45) == 45

    @given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=100))
    def test_split_always_adds_up_and_provider_rounds_down(self, cost, percent):
        parts = split(cost, provider_percent=percent)
        assert parts.provider + parts.platform == cost
        assert parts.provider == cost * percent // 100 and parts.platform >= 0

    def test_class_multipliers_are_the_seed_defaults(self):
        pricing = PricingSettings()
        assert (pricing.priority_percent, pricing.standard_percent, pricing.economy_percent) == (120, 100, 90)


@pytest.fixture
async def funded(client, database, clock):
    """A renter with 1000 halala (``client`` empties tables first and checks invariants after)."""
    async with database.writer() as session:
        await ledger.post(
            session,
            kind=TxKind.topup,
            reference="t",
            idempotency_key="t",
            now=clock.now(),
            legs=[Leg(Account.cash, PLATFORM, -1000), Leg(Account.renter_available, RENTER, 1000)],
        )
        await session.commit()
    return database


async def _balances(database):
    async with database.reader() as session:
        return {
            account: await ledger.balance(
                session,
                account,
                PROVIDER
                if account.startswith("provider")
                else RENTER
                if account.startswith("renter")
                else PLATFORM,
            )
            for account in Account
        }


async def _run(database, work):
    async with database.writer() as session:
        result = await work(session)
        await session.commit()
        return result


class TestSettle:
    async def test_settle_bills_the_cost_splits_it_and_releases_the_rest(self, funded, clock):
        now = clock.now()
        await _run(
            funded, lambda s: settlement.hold(s, renter_id=RENTER, work_ref="job-a", amount=450, now=now)
        )
        row = await _run(
            funded,
            lambda s: settlement.settle(
                s,
                renter_id=RENTER,
                provider_id=PROVIDER,
                work_ref="job-a",
                cost=188,
                provider_percent=75,
                now=now,
            ),
        )
        assert (row.cost_halala, row.provider_share_halala, row.platform_fee_halala, row.refunded_halala) == (
            188,
            141,
            47,
            262,
        )
        balances = await _balances(funded)
        assert balances[Account.renter_available] == 1000 - 188
        assert balances[Account.renter_held] == 0
        assert balances[Account.provider_earnings] == 141
        assert balances[Account.platform_fees] == 47

    async def test_cost_above_the_hold_is_capped(self, funded, clock):
        now = clock.now()
        await _run(
            funded, lambda s: settlement.hold(s, renter_id=RENTER, work_ref="job-b", amount=100, now=now)
        )
        row = await _run(
            funded,
            lambda s: settlement.settle(
                s,
                renter_id=RENTER,
                provider_id=PROVIDER,
                work_ref="job-b",
                cost=10**9,
                provider_percent=75,
                now=now,
            ),
        )
        assert row.cost_halala == 100 and row.refunded_halala == 0
        assert (await _balances(funded))[Account.renter_available] == 900

    async def test_hold_beyond_the_balance_is_refused(self, funded, clock):
        with pytest.raises(InsufficientFunds):
            await _run(
                funded,
                lambda s: settlement.hold(s, renter_id=RENTER, work_ref="big", amount=1001, now=clock.now()),
            )
        assert (await _balances(funded))[Account.renter_available] == 1000

    async def test_a_timeout_racing_a_completion_pays_once(self, funded, clock):
        now = clock.now()
        await _run(
            funded, lambda s: settlement.hold(s, renter_id=RENTER, work_ref="job-c", amount=300, now=now)
        )

        def complete(session):
            return settlement.settle(
                session,
                renter_id=RENTER,
                provider_id=PROVIDER,
                work_ref="job-c",
                cost=200,
                provider_percent=75,
                now=now,
            )

        def time_out(session):
            return settlement.refund(
                session, renter_id=RENTER, provider_id=PROVIDER, work_ref="job-c", reason="timed out", now=now
            )

        outcomes = await asyncio.gather(
            *[_run(funded, step) for step in (complete, time_out, complete, time_out)]
        )
        assert len({row.id for row in outcomes}) == 1
        balances = await _balances(funded)
        first = outcomes[0]
        assert balances[Account.renter_available] == 1000 - first.cost_halala
        assert balances[Account.renter_held] == 0

    async def test_refund_returns_the_whole_hold(self, funded, clock):
        now = clock.now()
        await _run(
            funded, lambda s: settlement.hold(s, renter_id=RENTER, work_ref="job-d", amount=700, now=now)
        )
        row = await _run(
            funded,
            lambda s: settlement.refund(
                s, renter_id=RENTER, provider_id=None, work_ref="job-d", reason="retries exhausted", now=now
            ),
        )
        assert row.outcome == "refunded" and row.refunded_halala == 700
        assert (await _balances(funded))[Account.renter_available] == 1000
