"""Property test: random sequences of every money movement keep the ledger sound and match a simple model."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcp.billing import ledger, settlement, topups
from dcp.billing.errors import InsufficientFunds
from dcp.billing.invariants import all_problems
from dcp.billing.ledger import PLATFORM, Account
from dcp.billing.pricing import split
from dcp.db.engine import Database, open_database
from dcp.kit.clock import ManualClock
from dcp.kit.errors import AppError
from dcp.models import Provider, Renter
from dcp.withdrawals import service as withdrawals
from tests.conftest import empty_tables

RENTERS, PROVIDERS = (1, 2), (1, 2)
IBAN = "SA0380000000608010167519"

# Top-ups are large and holds small so that most sequences reach settlement and withdrawals.
costs = st.integers(min_value=0, max_value=4000)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("topup"), st.sampled_from(RENTERS), st.integers(min_value=1, max_value=20000)),
        st.tuples(st.just("submit"), st.sampled_from(RENTERS), st.integers(min_value=1, max_value=3000)),
        st.tuples(st.just("complete"), st.integers(0, 20), st.sampled_from(PROVIDERS), costs),
        st.tuples(st.just("fail"), st.integers(0, 20)),
        st.tuples(st.just("cancel_running"), st.integers(0, 20), st.sampled_from(PROVIDERS), costs),
        st.tuples(st.just("timeout"), st.integers(0, 20), st.sampled_from(PROVIDERS)),
        st.tuples(st.just("withdraw"), st.sampled_from(PROVIDERS), st.integers(min_value=1, max_value=3000)),
        st.tuples(st.just("pay"), st.integers(0, 10)),
        st.tuples(st.just("reject"), st.integers(0, 10)),
    ),
    min_size=5,
    max_size=30,
)


@dataclass
class Model:
    available: dict[int, int] = field(default_factory=lambda: dict.fromkeys(RENTERS, 0))
    held: dict[int, int] = field(default_factory=lambda: dict.fromkeys(RENTERS, 0))
    earnings: dict[int, int] = field(default_factory=lambda: dict.fromkeys(PROVIDERS, 0))
    pending: dict[int, int] = field(default_factory=lambda: dict.fromkeys(PROVIDERS, 0))
    fees: int = 0
    jobs: list[tuple[str, int, int]] = field(default_factory=list)  # (ref, renter, hold) still open
    withdrawals: list[int] = field(default_factory=list)


async def _step(db: Database, model: Model, op: tuple, clock: ManualClock) -> None:
    now = clock.now()
    async with db.writer() as session:
        try:
            await _apply(session, model, op, now)
            await session.commit()
        except (InsufficientFunds, AppError):
            await session.rollback()


async def _apply(session, model: Model, op: tuple, now) -> None:
    kind = op[0]
    if kind == "topup":
        await topups.credit_renter(
            session, renter_id=op[1], amount=op[2], reason="p", idempotency_key=str(now), now=now
        )
        model.available[op[1]] += op[2]
    elif kind == "submit":
        ref = f"job-{len(model.jobs)}-{now.timestamp()}"
        await settlement.hold(session, renter_id=op[1], work_ref=ref, amount=op[2], now=now)
        model.available[op[1]] -= op[2]
        model.held[op[1]] += op[2]
        model.jobs.append((ref, op[1], op[2]))
    elif kind in ("complete", "cancel_running", "timeout") and model.jobs:
        ref, renter, hold = model.jobs.pop(op[1] % len(model.jobs))
        cost = hold if kind == "timeout" else op[3]
        await settlement.settle(
            session,
            renter_id=renter,
            provider_id=op[2],
            work_ref=ref,
            cost=cost,
            provider_percent=75,
            now=now,
        )
        charged = min(cost, hold)
        parts = split(charged, provider_percent=75)
        model.held[renter] -= hold
        model.available[renter] += hold - charged
        model.earnings[op[2]] += parts.provider
        model.fees += parts.platform
    elif kind == "fail" and model.jobs:
        ref, renter, hold = model.jobs.pop(op[1] % len(model.jobs))
        await settlement.refund(
            session, renter_id=renter, provider_id=None, work_ref=ref, reason="failed", now=now
        )
        model.held[renter] -= hold
        model.available[renter] += hold
    elif kind == "withdraw":
        made = await withdrawals.request(session, provider_id=op[1], amount=op[2], iban=IBAN, now=now)
        model.earnings[op[1]] -= op[2]
        model.pending[op[1]] += op[2]
        model.withdrawals.append(made.id)
    elif kind in ("pay", "reject") and model.withdrawals:
        withdrawal_id = model.withdrawals[op[1] % len(model.withdrawals)]
        if kind == "pay":
            await withdrawals.approve(session, withdrawal_id=withdrawal_id, now=now)
            done = await withdrawals.mark_paid(session, withdrawal_id=withdrawal_id, reference="ref", now=now)
        else:
            done = await withdrawals.reject(session, withdrawal_id=withdrawal_id, reason="no", now=now)
            model.earnings[done.provider_id] += done.amount_halala
        model.pending[done.provider_id] -= done.amount_halala
        model.withdrawals.remove(withdrawal_id)


async def _scenario(url: str, ops: list[tuple]) -> None:
    db = open_database(url)
    clock = ManualClock()
    try:
        await empty_tables(db)
        async with db.writer() as session:
            for n in RENTERS:
                session.add(
                    Renter(
                        id=n,
                        name=f"r{n}",
                        email=f"r{n}@x.sa",
                        key_digest=f"r{n}",
                        status="active",
                        created_at=clock.now(),
                    )
                )
            for n in PROVIDERS:
                session.add(
                    Provider(
                        id=n,
                        name=f"p{n}",
                        email=f"p{n}@x.sa",
                        gpu_model="g",
                        os="linux",
                        key_digest=f"p{n}",
                        approval_status="approved",
                        paused=False,
                        created_at=clock.now(),
                        gpu_count=0,
                        cached_models=[],
                        gpus=[],
                        prices={},
                        signing_key=f"s{n}",
                        slots=1,
                        jobs_completed=0,
                        serving_models=[],
                        serving_ready=False,
                        serving_concurrency=1,
                        serving_context=4096,
                        jobs_lost=0,
                    )
                )
            await session.commit()
        model = Model()
        for op in ops:
            clock.advance(seconds=1)
            await _step(db, model, op, clock)
            async with db.reader() as session:
                assert await all_problems(session) == [], op
                for renter in RENTERS:
                    assert (
                        await ledger.balance(session, Account.renter_available, renter)
                        == model.available[renter]
                    )
                    assert await ledger.balance(session, Account.renter_held, renter) == model.held[renter]
                for provider in PROVIDERS:
                    assert (
                        await ledger.balance(session, Account.provider_earnings, provider)
                        == model.earnings[provider]
                    )
                    assert (
                        await ledger.balance(session, Account.provider_payout_pending, provider)
                        == model.pending[provider]
                    )
                assert await ledger.balance(session, Account.platform_fees, PLATFORM) == model.fees
        await empty_tables(db)
    finally:
        await db.dispose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_random_money_movements_keep_every_invariant(database_url, ops):
    asyncio.run(_scenario(database_url, ops))
