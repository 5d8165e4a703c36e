"""The only code that moves money: post a balanced set of entries, once per idempotency key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

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
    if existing := await _find(session, idempotency_key):
        return existing, False
    transaction = LedgerTransaction(
        kind=kind,
        reference=reference,
        idempotency_key=idempotency_key,
        memo=memo,
        created_at=now,
        actor=actor_var.get(),
        client_ip=client_ip_var.get(),
    )
    try:
        async with session.begin_nested():
            session.add(transaction)
            await session.flush()
    except IntegrityError:
        # A concurrent request posted the same key first (PostgreSQL); it is the one that counts.
        return await _find_existing(session, idempotency_key), False
    accounts = {leg: await account_id(session, leg.account, leg.owner_id) for leg in legs}
    # Lock rows in id order so two movements touching the same accounts can never deadlock.
    for leg in sorted(legs, key=lambda leg: accounts[leg]):
        await _apply(session, accounts[leg], leg)
        session.add(LedgerEntry(transaction_id=transaction.id, account_id=accounts[leg], amount=leg.amount))
    await session.flush()
    return transaction, True


async def _apply(session: AsyncSession, account: int, leg: Leg) -> None:
    changed = await session.execute(
        update(LedgerAccount)
        .where(
            LedgerAccount.id == account,
            or_(LedgerAccount.may_go_negative, LedgerAccount.balance + leg.amount >= 0),
        )
        .values(balance=LedgerAccount.balance + leg.amount)
        .returning(LedgerAccount.id)
    )
    if changed.scalar_one_or_none() is None:
        available = await balance(session, leg.account, leg.owner_id)
        raise InsufficientFunds(account=leg.account, needed=-leg.amount, available=available)


async def _find_existing(session: AsyncSession, idempotency_key: str) -> LedgerTransaction:
    found = await session.execute(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key)
    )
    return found.scalar_one()


async def _find(session: AsyncSession, idempotency_key: str) -> LedgerTransaction | None:
    found = await session.execute(
        select(LedgerTransaction).where(LedgerTransaction.idempotency_key == idempotency_key)
    )
    return found.scalar_one_or_none()


async def account_id(session: AsyncSession, account: Account, owner_id: int) -> int:
    """The id of an account, opening it on first use."""
    where = and_(LedgerAccount.kind == account, LedgerAccount.owner_id == owner_id)
    found = (await session.execute(select(LedgerAccount.id).where(where))).scalar_one_or_none()
    if found is not None:
        return found
    row = LedgerAccount(kind=account, owner_id=owner_id, balance=0, may_go_negative=account is Account.cash)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return (await session.execute(select(LedgerAccount.id).where(where))).scalar_one()
    return row.id


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
