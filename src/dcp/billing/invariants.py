"""The money invariants, checked by ``dcp admin check-ledger`` and after every test that moves money."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import allowances, ledger
from dcp.billing.ledger import Account, TxKind
from dcp.gateway.billing import REQUEST_PREFIX
from dcp.models import (
    GatewayAllowance,
    GatewayRequest,
    Job,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    Settlement,
    Withdrawal,
)
from dcp.models.job import TERMINAL_STATUSES
from dcp.models.withdrawal import OPEN_STATUSES


async def ledger_problems(session: AsyncSession) -> list[str]:
    """Every way the ledger is wrong, as sentences; an empty list means it is sound."""
    problems: list[str] = []
    unbalanced = await session.execute(
        select(LedgerEntry.transaction_id, func.sum(LedgerEntry.amount))
        .group_by(LedgerEntry.transaction_id)
        .having(func.sum(LedgerEntry.amount) != 0)
    )
    problems += [f"transaction {tx} sums to {amount}, not 0" for tx, amount in unbalanced]
    sums = (
        select(LedgerEntry.account_id, func.sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    drift = await session.execute(
        select(LedgerAccount.id, LedgerAccount.kind, LedgerAccount.balance, func.coalesce(sums.c.total, 0))
        .outerjoin(sums, sums.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.balance != func.coalesce(sums.c.total, 0))
    )
    problems += [
        f"account {id_} ({kind}) caches {cached} but its entries sum to {real}"
        for id_, kind, cached, real in drift
    ]
    negative = await session.execute(
        select(LedgerAccount.id, LedgerAccount.kind, LedgerAccount.balance).where(
            ~LedgerAccount.may_go_negative, LedgerAccount.balance < 0
        )
    )
    problems += [f"account {id_} ({kind}) is negative: {value}" for id_, kind, value in negative]
    return problems


async def settlement_problems(session: AsyncSession) -> list[str]:
    """Each finished piece of work was settled once, its parts add up, and its whole hold was released."""
    problems: list[str] = []
    for row in (await session.execute(select(Settlement))).scalars():
        if row.held_halala != row.cost_halala + row.refunded_halala:
            problems.append(f"{row.work_ref}: held {row.held_halala} != cost + refund")
        if row.cost_halala != row.provider_share_halala + row.platform_fee_halala:
            problems.append(f"{row.work_ref}: cost {row.cost_halala} != provider share + platform fee")
        released = await ledger.amount_to(session, row.transaction_id, Account.renter_held)
        if released != -row.held_halala:
            problems.append(f"{row.work_ref}: settlement released {-released} of a {row.held_halala} hold")
    held_refs = await _net_by_reference(session, Account.renter_held, TxKind.hold)
    settled = {row.work_ref: row.held_halala for row in (await session.execute(select(Settlement))).scalars()}
    # A request that drew from an allowance had no hold of its own: allowance_problems checks those.
    drew = set(
        (
            await session.execute(
                select(GatewayRequest.request_id).where(GatewayRequest.allowance_id.is_not(None))
            )
        )
        .scalars()
        .all()
    )
    problems += [
        f"{ref}: held {held_refs.get(ref, 0)} but settled {amount}"
        for ref, amount in settled.items()
        if held_refs.get(ref, 0) != amount and ref not in drew
    ]
    return problems


async def withdrawal_problems(session: AsyncSession) -> list[str]:
    """Money in payout_pending is exactly the open requests; what was paid left payout_pending once."""
    problems: list[str] = []
    pending = await _net_by_reference(session, Account.provider_payout_pending)
    paid_out = await _net_by_reference(session, Account.cash, TxKind.withdrawal_paid)
    for withdrawal in (await session.execute(select(Withdrawal))).scalars():
        ref = f"withdrawal:{withdrawal.id}"
        expected = withdrawal.amount_halala if withdrawal.status in OPEN_STATUSES else 0
        if pending.get(ref, 0) != expected:
            problems.append(f"{ref} ({withdrawal.status}) parks {pending.get(ref, 0)} in payout_pending")
        paid = paid_out.get(ref, 0)
        if paid != (withdrawal.amount_halala if withdrawal.status == "paid" else 0):
            problems.append(f"{ref} ({withdrawal.status}) paid out {paid} of {withdrawal.amount_halala}")
    return problems


async def all_problems(session: AsyncSession) -> list[str]:
    return [
        *await ledger_problems(session),
        *await settlement_problems(session),
        *await withdrawal_problems(session),
        *await job_problems(session),
        *await gateway_problems(session),
        *await allowance_problems(session),
    ]


async def _net_by_reference(
    session: AsyncSession, account: Account, kind: TxKind | None = None, *, prefix: str = ""
) -> dict[str, int]:
    query = (
        select(LedgerTransaction.reference, func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.kind == account)
        .group_by(LedgerTransaction.reference)
    )
    if kind is not None:
        query = query.where(LedgerTransaction.kind == kind)
    if prefix:
        query = query.where(LedgerTransaction.reference.startswith(prefix, autoescape=True))
    return {reference: int(amount) for reference, amount in await session.execute(query)}


async def job_problems(session: AsyncSession) -> list[str]:
    """Every ended job was settled or refunded exactly once; every open job still has its whole hold."""
    problems: list[str] = []
    rows = await session.execute(
        select(Job.job_id, Job.status, Job.cost_halala, Settlement.id).outerjoin(
            Settlement, Settlement.work_ref == Job.job_id
        )
    )
    held = await _net_by_reference(session, Account.renter_held)
    for job_id, status, quote, settlement_id in rows:
        if status in TERMINAL_STATUSES and settlement_id is None:
            problems.append(f"{job_id} is {status} but was never settled or refunded")
        if status not in TERMINAL_STATUSES and settlement_id is not None:
            problems.append(f"{job_id} is {status} but already settled")
        expected = 0 if status in TERMINAL_STATUSES else quote
        if held.get(job_id, 0) != expected:
            problems.append(f"{job_id} ({status}) holds {held.get(job_id, 0)}, expected {expected}")
    return problems


async def gateway_problems(session: AsyncSession) -> list[str]:
    """A finished /v1 request holds nothing (its hold was settled or refunded with its usage row), and the
    cost its usage row shows is what its settlement charged. An unfinished one still holds its worst case,
    until its settlement or, if its server process died, the sweeper's refund."""
    problems: list[str] = []
    held = await _net_by_reference(session, Account.renter_held, prefix=REQUEST_PREFIX)
    rows = await session.execute(
        select(
            GatewayRequest.request_id,
            GatewayRequest.cost_halala,
            GatewayRequest.allowance_id,
            Settlement.cost_halala,
        ).outerjoin(Settlement, Settlement.work_ref == GatewayRequest.request_id)
    )
    for request_id, cost, allowance_id, charged in rows:
        # A request that drew from an allowance took its cost out of the allowance's held money.
        expected = -(charged or 0) if allowance_id is not None else 0
        if held.get(request_id, 0) != expected:
            problems.append(f"{request_id} finished but still holds {held[request_id] - expected}")
        if cost != (charged or 0):
            problems.append(f"{request_id} shows a cost of {cost} but was charged {charged or 0}")
    return problems


async def allowance_problems(session: AsyncSession) -> list[str]:
    """Each /v1 allowance holds in the ledger what its row says it took, has paid out exactly what the
    settlements of its requests charged (and their usage rows show), and, once closed, released the rest:
    an open one holds ``held - spent``, a closed one nothing."""
    problems: list[str] = []
    taken = await _net_by_reference(session, Account.renter_held, TxKind.hold, prefix=allowances.PREFIX)
    released = await _net_by_reference(session, Account.renter_held, TxKind.release, prefix=allowances.PREFIX)
    charged = dict(
        (
            await session.execute(
                select(GatewayRequest.allowance_id, func.sum(Settlement.cost_halala))
                .join(Settlement, Settlement.work_ref == GatewayRequest.request_id)
                .where(GatewayRequest.allowance_id.is_not(None))
                .group_by(GatewayRequest.allowance_id)
            )
        ).all()
    )
    shown = dict(
        (
            await session.execute(
                select(GatewayRequest.allowance_id, func.sum(GatewayRequest.cost_halala))
                .where(GatewayRequest.allowance_id.is_not(None))
                .group_by(GatewayRequest.allowance_id)
            )
        ).all()
    )
    for row in (await session.execute(select(GatewayAllowance))).scalars():
        name = row.reference
        if not 0 <= row.spent_halala <= row.held_halala:
            problems.append(f"{name}: spent {row.spent_halala} of {row.held_halala}")
        if taken.get(name, 0) != row.held_halala:
            problems.append(f"{name}: its holds took {taken.get(name, 0)}, its row says {row.held_halala}")
        if int(charged.get(row.id) or 0) != row.spent_halala:
            problems.append(
                f"{name}: settlements charged {charged.get(row.id) or 0} of {row.spent_halala} spent"
            )
        if int(shown.get(row.id) or 0) != row.spent_halala:
            problems.append(f"{name}: usage rows show {shown.get(row.id) or 0} of {row.spent_halala} spent")
        rest = 0 if row.closed_at is None else row.held_halala - row.spent_halala
        if -released.get(name, 0) != rest:
            problems.append(f"{name}: released {-released.get(name, 0)}, expected {rest}")
    return problems
