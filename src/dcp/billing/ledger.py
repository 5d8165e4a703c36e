"""The only code that moves money: post a balanced set of entries, once per idempotency key."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import ReturningUpdate

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
# Built once: SQL constructs cost more to build per call than the statements cost to run.
_NEW_TRANSACTION = {
    "postgresql": postgresql.insert(_TRANSACTIONS)
    .on_conflict_do_nothing(index_elements=[_TRANSACTIONS.c.idempotency_key])
    .returning(_TRANSACTIONS.c.id, _TRANSACTIONS.c.idempotency_key),
    "sqlite": sqlite.insert(_TRANSACTIONS)
    .on_conflict_do_nothing(index_elements=[_TRANSACTIONS.c.idempotency_key])
    .returning(_TRANSACTIONS.c.id, _TRANSACTIONS.c.idempotency_key),
}
_CHANGE: dict[str, Any] = {"id": Integer(), "kind": String(), "owner": Integer(), "amount": BigInteger()}
_LOCK_ACCOUNTS = (
    select(_ACCOUNTS.c.id)
    .where(_ACCOUNTS.c.id.in_(bindparam("ids", expanding=True)))
    .order_by(_ACCOUNTS.c.id)
    .with_for_update()
)
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


@dataclass(frozen=True)
class Posting:
    """One movement for ``post_many``, as ``post`` takes it."""

    kind: TxKind
    reference: str
    idempotency_key: str
    legs: list[Leg]
    now: datetime
    memo: str | None = None


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
    posting = Posting(kind, reference, idempotency_key, legs, now, memo)
    [transaction_id] = await post_many(session, [posting])
    if transaction_id is None:
        return await _find_existing(session, idempotency_key), False
    return LedgerTransaction(id=transaction_id, **_transaction_values(posting)), True


async def post_many(session: AsyncSession, postings: list[Posting]) -> list[int | None]:
    """Record movements in the caller's transaction with one INSERT of their transactions, one conditional
    UPDATE of the accounts they touch (each by the sum of its legs) and one INSERT of their entries.
    Returns each posting's new transaction id, or None where its key was used already (before, or earlier
    in ``postings``): that movement is not made again. InsufficientFunds when an account's change would take
    it below zero; the caller's unit of work must then roll back."""
    if not postings:
        return []
    for posting in postings:
        if sum(leg.amount for leg in posting.legs) != 0 or any(
            not isinstance(leg.amount, int) for leg in posting.legs
        ):
            raise UnbalancedTransaction(
                f"{posting.kind} {posting.reference}: entries must be integers summing to 0"
            )
    created = await _insert_transactions(session, postings)
    made = [(posting, tid) for posting, tid in zip(postings, created, strict=True) if tid is not None]
    change: dict[tuple[Account, int], int] = {}
    for posting, _ in made:
        for leg in posting.legs:
            change[leg.account, leg.owner_id] = change.get((leg.account, leg.owner_id), 0) + leg.amount
    ids = {key: await accounts.account_id(session, *key) for key in change}
    applied = await _apply_all(session, ids, change) if change else {}
    entries = [
        {"transaction_id": tid, "account_id": applied[leg.account, leg.owner_id], "amount": leg.amount}
        for posting, tid in made
        for leg in posting.legs
    ]
    if entries:
        await session.execute(insert(_ENTRIES), entries)
    return created


def _transaction_values(posting: Posting) -> dict[str, Any]:
    return {
        "kind": posting.kind,
        "reference": posting.reference,
        "idempotency_key": posting.idempotency_key,
        "memo": posting.memo,
        "created_at": posting.now,
        "actor": actor_var.get(),
        "client_ip": client_ip_var.get(),
    }


async def _insert_transactions(session: AsyncSession, postings: list[Posting]) -> list[int | None]:
    # The key's uniqueness decides: a repeat (or a concurrent request that posted it first, which
    # PostgreSQL waits for) inserts nothing, and the first transaction is the one that counts.
    statement = _NEW_TRANSACTION[session.get_bind().dialect.name]
    inserted = await session.execute(statement, [_transaction_values(posting) for posting in postings])
    by_key = {key: transaction_id for transaction_id, key in inserted}
    # pop: a key given twice in one batch is made once
    return [by_key.pop(posting.idempotency_key, None) for posting in postings]


async def _apply_all(
    session: AsyncSession, ids: dict[tuple[Account, int], int], change: dict[tuple[Account, int], int]
) -> dict[tuple[Account, int], int]:
    """Change every account's balance in one UPDATE, each only if it may take its change (a statement per
    account was most of a batch's statements); returns the ids of the accounts changed. An account it did
    not change (a stale cached id, or the money is not there) is tried alone (``_apply``)."""
    keys = sorted(change, key=ids.__getitem__)
    if session.get_bind().dialect.name == "postgresql":
        # Lock the rows in id order first, so two movements touching the same accounts can never deadlock.
        await session.execute(_LOCK_ACCOUNTS, {"ids": [ids[key] for key in keys]})
    # Padded to a power of two with rows that match no account: one statement for many sizes.
    padded = 1 << (len(keys) - 1).bit_length()
    rows = [(ids[key], key[0].value, key[1], change[key]) for key in keys]
    rows += [(0, "", 0, 0)] * (padded - len(keys))
    params = {
        f"{name}_{n}": value for n, row in enumerate(rows) for name, value in zip(_CHANGE, row, strict=True)
    }
    changed = await session.execute(_change_balances(padded), params)
    done = {(kind, owner) for kind, owner in changed}
    return {
        key: ids[key] if key in done else await _apply(session, ids[key], Leg(*key, change[key]))
        for key in keys
    }


@functools.cache
def _change_balances(rows: int) -> ReturningUpdate[str, int]:
    """The UPDATE of ``rows`` accounts at once, built once per size: building and compiling it each time
    cost more than running it. Row n's parameters are ``id_n``, ``kind_n``, ``owner_n`` and ``amount_n``."""
    given = union_all(
        *(
            select(*(bindparam(f"{name}_{n}", type_=type_).label(name) for name, type_ in _CHANGE.items()))
            for n in range(rows)
        )
    ).cte("change")
    return (
        update(_ACCOUNTS)
        .where(
            _ACCOUNTS.c.id == given.c.id,
            _ACCOUNTS.c.kind == given.c.kind,
            _ACCOUNTS.c.owner_id == given.c.owner,
            or_(_ACCOUNTS.c.may_go_negative, _ACCOUNTS.c.balance + given.c.amount >= 0),
        )
        .values(balance=_ACCOUNTS.c.balance + given.c.amount)
        .returning(_ACCOUNTS.c.kind, _ACCOUNTS.c.owner_id)
    )


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
