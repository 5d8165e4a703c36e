"""The ledger's invariants, checked by ``dcp admin check-ledger`` and after every test that moves money."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.models import LedgerAccount, LedgerEntry


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
