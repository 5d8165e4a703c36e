"""The ledger core: balanced, idempotent, never below zero, also under concurrent spending."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete

from dcp.billing import accounts, ledger
from dcp.billing.errors import InsufficientFunds, UnbalancedTransaction
from dcp.billing.invariants import ledger_problems
from dcp.billing.ledger import PLATFORM, Account, Leg, TxKind
from dcp.db.engine import Database
from dcp.models import LedgerAccount, LedgerEntry, LedgerTransaction

RENTER = 1


async def _topup(database: Database, amount: int, key: str, now) -> None:
    async with database.writer() as session:
        await ledger.post(
            session,
            kind=TxKind.topup,
            reference="r",
            idempotency_key=key,
            now=now,
            legs=[Leg(Account.cash, PLATFORM, -amount), Leg(Account.renter_available, RENTER, amount)],
        )
        await session.commit()


async def _hold(database: Database, amount: int, key: str, now) -> bool:
    async with database.writer() as session:
        try:
            legs = [Leg(Account.renter_available, RENTER, -amount), Leg(Account.renter_held, RENTER, amount)]
            await ledger.post(
                session, kind=TxKind.hold, reference=key, idempotency_key=key, now=now, legs=legs
            )
        except InsufficientFunds:
            await session.rollback()
            return False
        await session.commit()
        return True


@pytest.fixture
async def empty_ledger(client, database):
    """``client`` empties every table before the test and checks the invariants after it."""
    return database


async def test_unbalanced_or_float_movements_are_refused(empty_ledger, clock):
    async with empty_ledger.writer() as session:
        for legs in (
            [Leg(Account.cash, PLATFORM, -5), Leg(Account.renter_available, RENTER, 4)],
            [Leg(Account.cash, PLATFORM, -1.5), Leg(Account.renter_available, RENTER, 1.5)],  # type: ignore[arg-type]
        ):
            with pytest.raises(UnbalancedTransaction):
                await ledger.post(
                    session,
                    kind=TxKind.adjustment,
                    reference="x",
                    idempotency_key="x",
                    legs=legs,
                    now=clock.now(),
                )


async def test_same_key_moves_money_once(empty_ledger, clock):
    await _topup(empty_ledger, 100, "once", clock.now())
    await _topup(empty_ledger, 100, "once", clock.now())
    async with empty_ledger.reader() as session:
        assert await ledger.balance(session, Account.renter_available, RENTER) == 100
        assert await ledger.balance(session, Account.cash, PLATFORM) == -100


async def test_overspending_is_refused_and_changes_nothing(empty_ledger, clock):
    await _topup(empty_ledger, 100, "t", clock.now())
    assert await _hold(empty_ledger, 101, "too-much", clock.now()) is False
    async with empty_ledger.reader() as session:
        assert await ledger.balance(session, Account.renter_available, RENTER) == 100
        assert await ledger.balance(session, Account.renter_held, RENTER) == 0


async def test_many_accounts_change_together_and_one_short_changes_none(empty_ledger, clock):
    now = clock.now()

    def topup(renter: int, amount: int) -> ledger.Posting:
        legs = [Leg(Account.cash, PLATFORM, -amount), Leg(Account.renter_available, renter, amount)]
        return ledger.Posting(TxKind.topup, "r", f"topup-{renter}", legs, now)

    def hold(renter: int, amount: int) -> ledger.Posting:
        legs = [Leg(Account.renter_available, renter, -amount), Leg(Account.renter_held, renter, amount)]
        return ledger.Posting(TxKind.hold, "h", f"hold-{renter}-{amount}", legs, now)

    async with empty_ledger.writer() as session:
        await ledger.post_many(session, [topup(renter, 100 * renter) for renter in range(1, 6)])
        await session.commit()
    async with empty_ledger.writer() as session:
        with pytest.raises(InsufficientFunds) as refused:
            await ledger.post_many(session, [hold(1, 50), hold(2, 150), hold(3, 301), hold(4, 10)])
        assert refused.value.extra["available_halala"] == 300
        await session.rollback()
    async with empty_ledger.writer() as session:
        await ledger.post_many(session, [hold(1, 50), hold(2, 150), hold(2, 50), hold(5, 500)])
        await session.commit()
    async with empty_ledger.reader() as session:
        available = await ledger.balances(session, Account.renter_available, [1, 2, 3, 4, 5])
        held = await ledger.balances(session, Account.renter_held, [1, 2, 3, 4, 5])
        assert available == {1: 50, 2: 0, 3: 300, 4: 400, 5: 0}
        assert held == {1: 50, 2: 200, 3: 0, 4: 0, 5: 500}
        assert await ledger.balance(session, Account.cash, PLATFORM) == -1500
        assert await ledger_problems(session) == []


async def test_concurrent_holds_never_overspend(empty_ledger, clock):
    await _topup(empty_ledger, 1000, "t", clock.now())
    results = await asyncio.gather(*(_hold(empty_ledger, 70, f"hold-{i}", clock.now()) for i in range(30)))
    assert results.count(True) == 14  # 14 * 70 = 980 <= 1000 < 15 * 70
    async with empty_ledger.reader() as session:
        assert await ledger.balance(session, Account.renter_available, RENTER) == 1000 - 14 * 70
        assert await ledger.balance(session, Account.renter_held, RENTER) == 14 * 70
        assert await ledger_problems(session) == []


async def test_a_stale_cached_account_id_never_moves_another_accounts_money(empty_ledger, clock):
    await _topup(empty_ledger, 100, "before", clock.now())  # the process now knows these accounts' ids
    old = {
        account: accounts.cached(account, owner)
        for account, owner in ((Account.cash, PLATFORM), (Account.renter_available, RENTER))
    }
    assert None not in old.values()
    # The database is replaced (a restore, an emptied test database): the old ids now name other accounts.
    async with empty_ledger.writer() as session:
        for table in (LedgerEntry, LedgerTransaction, LedgerAccount):
            await session.execute(delete(table))
        for n, stale in enumerate(old.values()):
            session.add(LedgerAccount(id=stale, kind=Account.provider_earnings, owner_id=900 + n, balance=0))
        await session.commit()
    await _topup(empty_ledger, 30, "after", clock.now())
    async with empty_ledger.reader() as session:
        assert await ledger.balance(session, Account.renter_available, RENTER) == 30
        assert await ledger.balance(session, Account.cash, PLATFORM) == -30
        assert await ledger.balances(session, Account.provider_earnings, [900, 901]) == {900: 0, 901: 0}
        assert await ledger_problems(session) == []


async def test_only_committed_account_ids_are_remembered(empty_ledger):
    accounts.forget(Account.provider_earnings, 42)
    async with empty_ledger.writer() as session:
        await ledger.account_id(session, Account.provider_earnings, 42)
        await session.rollback()
    assert accounts.cached(Account.provider_earnings, 42) is None
    async with empty_ledger.writer() as session:
        opened = await ledger.account_id(session, Account.provider_earnings, 42)
        assert accounts.cached(Account.provider_earnings, 42) is None  # not before its row is committed
        await session.commit()
    assert accounts.cached(Account.provider_earnings, 42) == opened


async def test_a_repeated_key_returns_the_first_transaction(empty_ledger, clock):
    legs = [Leg(Account.cash, PLATFORM, -5), Leg(Account.renter_available, RENTER, 5)]
    async with empty_ledger.writer() as session:
        first, created = await ledger.post(
            session, kind=TxKind.topup, reference="r", idempotency_key="k", legs=legs, now=clock.now()
        )
        again, created_again = await ledger.post(
            session, kind=TxKind.topup, reference="r", idempotency_key="k", legs=legs, now=clock.now()
        )
        await session.commit()
    assert (created, created_again) == (True, False) and again.id == first.id
