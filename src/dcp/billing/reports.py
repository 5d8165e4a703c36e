"""Figures computed from the ledger for the dashboards and statements."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing.ledger import Account, TxKind
from dcp.models import LedgerAccount, LedgerEntry, LedgerTransaction


@dataclass(frozen=True)
class Revenue:
    """What renters paid for finished work (``gross``) and the platform's part of it (``fees``)."""

    gross: int
    fees: int


async def revenue(session: AsyncSession, *, since: datetime | None = None) -> Revenue:
    query = (
        select(LedgerAccount.kind, func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerTransaction.kind == TxKind.charge,
            LedgerAccount.kind.in_([Account.provider_earnings, Account.platform_fees]),
        )
        .group_by(LedgerAccount.kind)
    )
    if since is not None:
        query = query.where(LedgerTransaction.created_at >= since)
    parts = {kind: int(amount) for kind, amount in await session.execute(query)}
    fees = parts.get(Account.platform_fees, 0)
    return Revenue(gross=fees + parts.get(Account.provider_earnings, 0), fees=fees)


async def active_renter_count(session: AsyncSession, *, since: datetime) -> int:
    """Renters whose money moved (top-up, hold, charge…) since the given moment."""
    query = (
        select(func.count(distinct(LedgerAccount.owner_id)))
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerAccount.kind.in_([Account.renter_available, Account.renter_held]),
            LedgerTransaction.created_at >= since,
        )
    )
    return int((await session.execute(query)).scalar_one())


async def earned(session: AsyncSession, provider_id: int) -> int:
    """Everything a provider has earned from finished work, withdrawn or not."""
    query = _provider_movements(
        func.coalesce(func.sum(LedgerEntry.amount), 0),
        kind=TxKind.charge,
        account=Account.provider_earnings,
        provider_id=provider_id,
    )
    return int((await session.execute(query)).scalar_one())


async def earnings_since(
    session: AsyncSession, provider_id: int, *, since: datetime
) -> list[tuple[datetime, int]]:
    """Each payment for finished work into the provider's earnings since ``since``: when, and how much."""
    query = _provider_movements(
        LedgerTransaction.created_at,
        LedgerEntry.amount,
        kind=TxKind.charge,
        account=Account.provider_earnings,
        provider_id=provider_id,
    ).where(LedgerTransaction.created_at >= since)
    return [(created_at, int(amount)) for created_at, amount in await session.execute(query)]


async def paid_out(session: AsyncSession, provider_id: int) -> int:
    """Everything paid to a provider's bank account: withdrawals marked paid."""
    query = _provider_movements(
        func.coalesce(func.sum(LedgerEntry.amount), 0),
        kind=TxKind.withdrawal_paid,
        account=Account.provider_payout_pending,
        provider_id=provider_id,
    )
    return -int((await session.execute(query)).scalar_one())


def _provider_movements(*columns: Any, kind: TxKind, account: Account, provider_id: int) -> Select[Any]:
    """The entries of one kind of movement on one of a provider's accounts, selecting ``columns``."""
    return (
        select(*columns)
        .select_from(LedgerEntry)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .where(
            LedgerTransaction.kind == kind,
            LedgerAccount.kind == account,
            LedgerAccount.owner_id == provider_id,
        )
    )
