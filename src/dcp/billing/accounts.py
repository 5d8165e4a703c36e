"""Ledger account ids by (kind, owner): found or opened, cached per process once their row is committed."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from dcp.models import LedgerAccount

_ACCOUNTS = cast(Table, LedgerAccount.__table__)
_FIND = select(_ACCOUNTS.c.id).where(
    _ACCOUNTS.c.kind == bindparam("p_kind"), _ACCOUNTS.c.owner_id == bindparam("p_owner")
)
# One statement opens an account or finds that another transaction already has (PostgreSQL waits for that
# transaction to end first); both databases speak ON CONFLICT, only the construct's module differs.
_OPEN = {
    "postgresql": postgresql.insert(_ACCOUNTS)
    .on_conflict_do_nothing(index_elements=[_ACCOUNTS.c.kind, _ACCOUNTS.c.owner_id])
    .returning(_ACCOUNTS.c.id),
    "sqlite": sqlite.insert(_ACCOUNTS)
    .on_conflict_do_nothing(index_elements=[_ACCOUNTS.c.kind, _ACCOUNTS.c.owner_id])
    .returning(_ACCOUNTS.c.id),
}
# An id never changes once its row is committed, so a process may keep it. Ids a session opened itself wait
# in session.info until that session commits: a rollback takes the row (and maybe its id) away.
_committed: dict[tuple[str, int], int] = {}
_OPENED = "dcp_opened_ledger_accounts"
_MAX_CACHED = 500_000


def cached(kind: str, owner_id: int) -> int | None:
    return _committed.get((kind, owner_id))


def forget(kind: str, owner_id: int) -> None:
    """Drop an id that no longer names this account (a restored or emptied database)."""
    _committed.pop((kind, owner_id), None)


async def account_id(session: AsyncSession, kind: str, owner_id: int, *, use_cache: bool = True) -> int:
    """The id of an account, opening it on first use."""
    key = (kind, owner_id)
    if use_cache and (known := _committed.get(key)) is not None:
        return known
    params = {"p_kind": kind, "p_owner": owner_id}
    found: int | None = (await session.execute(_FIND, params)).scalar_one_or_none()
    opened: dict[tuple[str, int], int] = session.info.setdefault(_OPENED, {})
    if found is not None:
        if key not in opened:  # a row this session did not open is a committed one
            _remember(key, found)
        return found
    dialect = session.get_bind().dialect.name
    values = {"kind": kind, "owner_id": owner_id, "balance": 0, "may_go_negative": kind == "cash"}
    new: int | None = (await session.execute(_OPEN[dialect], values)).scalar_one_or_none()
    if new is None:  # another transaction opened it and has committed
        new = int((await session.execute(_FIND, params)).scalar_one())
        _remember(key, new)
        return new
    opened[key] = new
    return new


def _remember(key: tuple[str, int], account: int) -> None:
    if len(_committed) >= _MAX_CACHED:
        _committed.clear()
    _committed[key] = account


@event.listens_for(Session, "after_commit")
def _keep_opened(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint's release commits nothing yet
    for key, account in session.info.pop(_OPENED, {}).items():
        _remember(key, account)


@event.listens_for(Session, "after_soft_rollback")
def _drop_opened(session: Session, _previous: Any) -> None:
    # Any rollback, a savepoint's included, may have taken an opened row away: keep none of them.
    session.info.pop(_OPENED, None)
