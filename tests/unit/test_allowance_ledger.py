"""The allowance in the ledger (billing/allowances.py): taken within the renter's balance, charged only while
open, closed once, and every way its row and its ledger disagree is reported by the invariants."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from dcp.billing import allowances, ledger, settlement
from dcp.billing.errors import InsufficientFunds
from dcp.billing.invariants import allowance_problems
from dcp.billing.ledger import PLATFORM, Account, Leg, TxKind
from dcp.gateway.billing import Outcome, write_outcomes
from dcp.models import GatewayAllowance
from tests.support.factories import completed_usage

RENTER, PROVIDER = 7, 3


@pytest.fixture
async def funded(client, database, clock):
    """A renter with 300 halala (``client`` empties tables first and checks every invariant after)."""
    legs = [Leg(Account.cash, PLATFORM, -300), Leg(Account.renter_available, RENTER, 300)]
    async with database.writer() as session:
        await ledger.post(
            session, kind=TxKind.topup, reference="t", idempotency_key="t", now=clock.now(), legs=legs
        )
        await session.commit()
    return database


async def _in(database, work):
    async with database.writer() as session:
        result = await work(session)
        await session.commit()
        return result


async def _money(database) -> tuple[int, int]:
    async with database.reader() as session:
        return (
            await ledger.balance(session, Account.renter_available, RENTER),
            await ledger.balance(session, Account.renter_held, RENTER),
        )


def _take(clock, *, allowance_id=None, need=40, chunk=1000, number=1):
    ref = allowances.reference(process="p", renter_id=RENTER, number=number)

    async def work(session):
        return await allowances.take(
            session,
            renter_id=RENTER,
            allowance_id=allowance_id,
            ref=ref,
            process="p",
            need=need,
            chunk=chunk,
            now=clock.now(),
        )

    return work


def _outcome(clock, allowance_id: int, request_id: str, cost: int) -> Outcome:
    finish = settlement.drawn(
        renter_id=RENTER,
        provider_id=PROVIDER,
        work_ref=request_id,
        cost=cost,
        provider_percent=75,
        now=clock.now(),
    )
    usage = completed_usage(
        request_id=request_id,
        renter_id=RENTER,
        provider_id=PROVIDER,
        cost=cost,
        now=clock.now(),
        model="m",
        prompt_tokens=1,
        completion_tokens=1,
        latency_ms=1,
    )
    return Outcome(finish, usage, allowance_id)


class TestAllowanceLedger:
    async def test_taken_within_the_balance_charged_then_closed_once(self, funded, clock):
        taken = await _in(funded, _take(clock))
        assert taken.amount == 300 and await _money(funded) == (0, 300)  # all the renter has, under the chunk
        with pytest.raises(InsufficientFunds):
            await _in(funded, _take(clock, allowance_id=taken.allowance_id))  # nothing left to top up with
        outcomes = [_outcome(clock, taken.allowance_id, f"v1-{n}", 14) for n in range(3)]
        await _in(funded, lambda session: write_outcomes(session, outcomes))
        assert await _money(funded) == (0, 300 - 42)
        close = allowances.close
        assert (
            await _in(funded, lambda s: close(s, [taken.allowance_id], now=clock.now(), reason="idle")) == 258
        )
        assert (
            await _in(funded, lambda s: close(s, [taken.allowance_id], now=clock.now(), reason="idle")) == 0
        )
        assert await _money(funded) == (258, 0)

    async def test_a_charge_after_closing_takes_nothing(self, funded, clock):
        taken = await _in(funded, _take(clock, chunk=100))
        await _in(funded, lambda s: allowances.close(s, [taken.allowance_id], now=clock.now(), reason="gone"))
        late = [_outcome(clock, taken.allowance_id, "v1-late", 14)]
        await _in(funded, lambda session: write_outcomes(session, late))
        assert await _money(funded) == (300, 0)

    async def test_a_need_above_the_balance_takes_nothing(self, funded, clock):
        with pytest.raises(InsufficientFunds):
            await _in(funded, _take(clock, need=301))
        assert await _money(funded) == (300, 0)

    async def test_the_invariants_see_a_row_that_disagrees_with_the_ledger(self, funded, clock):
        taken = await _in(funded, _take(clock, chunk=100))
        rows = update(GatewayAllowance).where(GatewayAllowance.id == taken.allowance_id)
        async with funded.reader() as session:
            assert await allowance_problems(session) == []
        await _in(funded, lambda s: s.execute(rows.values(spent_halala=5)))
        async with funded.reader() as session:
            problems = await allowance_problems(session)
        assert any("settlements charged 0 of 5 spent" in problem for problem in problems)
        await _in(funded, lambda s: s.execute(rows.values(spent_halala=0, held_halala=99)))
        async with funded.reader() as session:
            problems = await allowance_problems(session)
        assert any("its holds took 100, its row says 99" in problem for problem in problems)
        await _in(funded, lambda s: s.execute(rows.values(held_halala=100)))  # sound again for the teardown
