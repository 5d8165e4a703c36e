"""The only code that moves money: post a balanced set of entries, once per idempotency key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import cast

from sqlalchemy import Table, bindparam, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing import accounts
from dcp.billing.errors import InsufficientFunds, UnbalancedTransaction
from dcp.kit.audit import actor_var, client_ip_var
from dcp.models import LedgerAccount, LedgerEntry, LedgerTransaction


class Account(StrEnum):
    renter_available = "renter_available"
    renter_held = "renter_held"
    provider_earnings = "provider_earnings"
    provider_payout_pending = "provider_payout_pending"
    platform_fees = "platform_fees"
    cash = "cash"  # money entering or leaving DCP; the only account that may go below zero


class TxKind(StrEnum):
    topup = "topup"
    hold = "hold"
    release = "release"
    charge = "charge"
    provider_share = "provider_share"
    platform_fee = "platform_fee"
    refund = "refund"
    withdrawal_request = "withdrawal_request"
    withdrawal_paid = "withdrawal_paid"
    withdrawal_rejected = "withdrawal_rejected"
    adjustment = "adjustment"


PLATFORM = 0  # owner id of the platform's own accounts

_TRANSACTIONS = cast(Table, LedgerTransaction.__table__)
_ENTRIES = cast(Table, LedgerEntry.__table__)
_ACCOUNTS = cast(Table, LedgerAccount.__table__)
_TRANSACTION_COLUMNS = ("kind", "reference", "idempotency_key", "memo", "created_at", "actor", "client_ip")
# Built once: SQL constructs cost more to build per call than the statements cost to run.
_NEW_TRANSACTION = {
    "postgresql": postgresql.insert(_TRANSACTIONS)
    .on_conflict_do_nothing(index_elements=[_TRANSACTIONS.c.idempotency_key])
    .returning(_TRANSACTIONS.c.id),
    "sqlite": sqlite.insert(_TRANSACTIONS)
    .on_conflict_do_nothing(index_elements=[_TRANSACTIONS.c.idempotency_key])
    .returning(_TRANSACTIONS.c.id),
}
_CHANGE_BALANCE = (
    update(_ACCOUNTS)
    .where(
        _ACCOUNTS.c.id == bindparam("p_id"),
        _ACCOUNTS.c.kind == bindparam("p_kind"),
        _ACCOUNTS.c.owner_id == bindparam("p_owner"),
        or_(_ACCOUNTS.c.may_go_negative, _ACCOUNTS.c.balance + bindparam("p_amount") >= 0),
    )
    .values(balance=_ACCOUNTS.c.balance + bindparam("p_amount"))
    .returning(_ACCOUNTS.c.id)
)


@dataclass(frozen=True)
class Leg:
    account: Account
    owner_id: int
    amount: int


async def post(
    session: AsyncSession,
    *,
    kind: TxKind,
    reference: str,
    idempotency_key: str,
    legs: list[Leg],
    now: datetime,
    memo: str | None = None,
) -> tuple[LedgerTransaction, bool]:
    """Record one movement; returns ``(transaction, created)``. A repeated key returns the first one.

    Raises InsufficientFunds, leaving the caller's unit of work to roll back, when a leg would take an
    account other than cash below zero; the check and the change are one conditional UPDATE.
    """
    if sum(leg.amount for leg in legs) != 0 or any(not isinstance(leg.amount, int) for leg in legs):
        raise UnbalancedTransaction(f"{kind} {reference}: entries must be integers that sum to zero")
    transaction = LedgerTransaction(
        kind=kind,
        reference=reference,
        idempotency_key=idempotency_key,
        memo=memo,
        created_at=now,
        actor=actor_var.get(),
        client_ip=client_ip_var.get(),
    )
    values = {column: getattr(transaction, column) for column in _TRANSACTION_COLUMNS}
    # The key's uniqueness decides: a repeat (or a concurrent request that posted it first, which
    # PostgreSQL waits for) inserts nothing, and the first transaction is the one that counts.
    inserted = await session.execute(_NEW_TRANSACTION[session.get_bind().dialect.name], values)
    transaction_id = inserted.scalar_one_or_none()
    if transaction_id is None:
        return await _find_existing(session, idempotency_key), False
    transaction.id = transaction_id
    ids = [await accounts.account_id(session, leg.account, leg.owner_id) for leg in legs]
    entries = []
    # Lock rows in id order so two movements touching the same accounts can never deadlock.
    for account, leg in sorted(zip(ids, legs, strict=True), key=lambda pair: pair[0]):
        applied = await _apply(session, account, leg)
        entries.append({"transaction_id": transaction_id, "account_id": applied, "amount": leg.amount})
    await session.execute(insert(_ENTRIES), entries)
    return transaction, True


async def _apply(session: AsyncSession, account: int, leg: Leg) -> int:
    """Change one balance if it may take the change; returns the id of the account changed."""
    if await _changed(session, account, leg):
        return account
    # The id may be a cached one that no longer names this account (a restored or emptied database, where
    # the account may even have to be opened again): look it up afresh and try once more.
    accounts.forget(leg.account, leg.owner_id)
    fresh = await accounts.account_id(session, leg.account, leg.owner_id, use_cache=False)
    if await _changed(session, fresh, leg):
        return fresh
    available = await balance(session, leg.account, leg.owner_id)
    raise InsufficientFunds(account=leg.account, needed=-leg.amount, available=available)


async def _changed(session: AsyncSession, account: int, leg: Leg) -> bool:
    # kind and owner are part of the condition, so a stale id can never move money of another account.
    params = {"p_id": account, "p_kind": leg.account, "p_owner": leg.owner_id, "p_amount": leg.amount}
    return (await session.execute(_CHANGE_BALANCE, params)).scalar_one_or_none() is not None


async def _find_existing(session: AsyncSession, idempotency_key: str) -> LedgerTransaction:
    found = await session.execute(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key)
    )
    return found.scalar_one()


async def account_id(session: AsyncSession, account: Account, owner_id: int) -> int:
    """The id of an account, opening it on first use."""
    return await accounts.account_id(session, account, owner_id)


async def balance(session: AsyncSession, account: Account, owner_id: int) -> int:
    found = await session.execute(
        select(LedgerAccount.balance).where(LedgerAccount.kind == account, LedgerAccount.owner_id == owner_id)
    )
    return found.scalar_one_or_none() or 0


async def total(session: AsyncSession, account: Account) -> int:
    """The sum of one kind of account over every owner (e.g. all renters' available money)."""
    found = await session.execute(
        select(func.coalesce(func.sum(LedgerAccount.balance), 0)).where(LedgerAccount.kind == account)
    )
    return int(found.scalar_one())


async def balances(session: AsyncSession, account: Account, owner_ids: list[int]) -> dict[int, int]:
    """Balances of one kind of account for many owners in one query (absent owners hold 0)."""
    if not owner_ids:
        return {}
    found = await session.execute(
        select(LedgerAccount.owner_id, LedgerAccount.balance).where(
            LedgerAccount.kind == account, LedgerAccount.owner_id.in_(owner_ids)
        )
    )
    held = {owner: amount for owner, amount in found}
    return {owner: held.get(owner, 0) for owner in owner_ids}


async def amount_to(session: AsyncSession, transaction_id: int, account: Account) -> int:
    """What one transaction moved into accounts of the given kind."""
    found = await session.execute(
        select(func.coalesce(func.sum(LedgerEntry.amount), 0))
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerEntry.transaction_id == transaction_id, LedgerAccount.kind == account)
    )
    return int(found.scalar_one())
