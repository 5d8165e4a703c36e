"""Statements: the movements of one account, paged and filtered by date, as JSON rows or CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import Depends, Query, Response
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.billing.ledger import Account
from dcp.kit.clock import iso
from dcp.kit.errors import BadRequest
from dcp.kit.pagination import Page
from dcp.models import LedgerAccount, LedgerEntry, LedgerTransaction

CSV_MAX_LINES = 100_000


class StatementLine(BaseModel):
    transaction_id: int
    created_at: str | None
    kind: str
    reference: str
    amount_halala: int
    memo: str | None


async def lines(
    session: AsyncSession, *, account: Account, owner_id: int, query: StatementFilter, page: Page
) -> tuple[list[StatementLine], int]:
    """The account's movements in the filter's dates, newest first, one page (a CSV download: all of them),
    and how many match in all."""
    since, until, limit, offset = query.since, query.until, page.limit, page.offset
    movements = (
        select(LedgerTransaction, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.kind == account, LedgerAccount.owner_id == owner_id)
    )
    if since is not None:
        movements = movements.where(LedgerTransaction.created_at >= since)
    if until is not None:
        movements = movements.where(LedgerTransaction.created_at < until)
    total = (await session.execute(select(func.count()).select_from(movements.subquery()))).scalar_one()
    if query.csv:  # a download is the whole statement of its dates, not the page a listing shows
        if total > CSV_MAX_LINES:
            message = f"Too many lines for one file ({total:,}, at most {CSV_MAX_LINES:,}): narrow the dates"
            raise BadRequest(message)
        limit, offset = CSV_MAX_LINES, 0
    rows = await session.execute(movements.order_by(LedgerTransaction.id.desc()).limit(limit).offset(offset))
    return [
        StatementLine(
            transaction_id=tx.id,
            created_at=iso(tx.created_at),
            kind=tx.kind,
            reference=tx.reference,
            amount_halala=amount,
            memo=tx.memo,
        )
        for tx, amount in rows
    ], total


def to_csv(rows: list[StatementLine]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(list(StatementLine.model_fields))
    for row in rows:
        writer.writerow([_safe_cell(value) for value in row.model_dump().values()])
    return buffer.getvalue()


def _safe_cell(value: object) -> object:
    # A cell starting with = + - @ is a formula to spreadsheets; memos come from people, so defuse them.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        return "'" + value
    return value


class StatementFilter(BaseModel):
    since: datetime | None
    until: datetime | None
    csv: bool


async def _statement_filter(
    since: Annotated[AwareDatetime | None, Query(alias="from", description="ISO 8601, inclusive")] = None,
    until: Annotated[AwareDatetime | None, Query(alias="to", description="ISO 8601, exclusive")] = None,
    format: Annotated[
        Literal["json", "csv"],
        Query(description="csv downloads every line of the dates (limit and offset do not apply)"),
    ] = "json",
) -> StatementFilter:
    since, until = _in_utc(since, "from"), _in_utc(until, "to")
    if since and until and until <= since:
        raise BadRequest("Invalid to: must be after from")
    return StatementFilter(since=since, until=until, csv=format == "csv")


def _in_utc(moment: datetime | None, name: str) -> datetime | None:
    """``moment`` in UTC, as the database compares it; one past year 1 or 9999 there is refused."""
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise BadRequest(f"Invalid {name}: out of range") from None


StatementFilterDep = Annotated[StatementFilter, Depends(_statement_filter)]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "JSON, or CSV with format=csv",
    }
}


def csv_download(rows: list[StatementLine], filename: str) -> Response:
    return Response(
        to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
