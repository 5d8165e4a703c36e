"""Admin pages for withdrawals: the list by status, and approving, marking paid or rejecting one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, TypeVar

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.admin import repository as admin_queries
from dcp.db.session import SessionDep
from dcp.deps import NowDep
from dcp.kit.errors import AppError
from dcp.kit.fields import IdPath
from dcp.kit.pagination import PageDep as ListPageDep
from dcp.models import Withdrawal
from dcp.models.withdrawal import OPEN_STATUSES
from dcp.web.admin_outcome import back_with_notice, notice
from dcp.web.context import AdminPage, FormDep, Page
from dcp.web.forms import field_errors
from dcp.withdrawals import repository, service
from dcp.withdrawals.api import view
from dcp.withdrawals.errors import WithdrawalNotFound
from dcp.withdrawals.schemas import MarkPaid, Reject

router = APIRouter()
WithdrawalStatus = Literal["pending", "approved", "paid", "rejected"]
Body = TypeVar("Body", bound=BaseModel)
STATUSES: tuple[WithdrawalStatus, ...] = ("pending", "approved", "paid", "rejected")


@router.get("/withdrawals", response_class=HTMLResponse)
async def withdrawals(
    page: AdminPage, session: SessionDep, listing: ListPageDep, status: WithdrawalStatus | None = None
) -> Response:
    where = [Withdrawal.status == status] if status else []
    found, total = await repository.listing(session, where=where, limit=listing.limit, offset=listing.offset)
    names = await admin_queries.provider_names(session, {w.provider_id for w in found})
    return page.render(
        "admin/withdrawals.html",
        rows=[view(w, masked=True) for w in found],
        names=names,
        total=total,
        listing=listing,
        summary=await repository.by_status(session),
        statuses=STATUSES,
        current=status or "",
        notice=notice(page),
    )


@router.get("/withdrawals/{withdrawal_id}", response_class=HTMLResponse)
async def withdrawal(withdrawal_id: IdPath, page: AdminPage, session: SessionDep) -> Response:
    return await _withdrawal_page(page, session, withdrawal_id)


async def _withdrawal_page(
    page: Page,
    session: SessionDep,
    withdrawal_id: int,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    error: AppError | None = None,
) -> Response:
    """One withdrawal with the actions its state allows. Its IBAN is shown whole while the payout is still to
    be made (the operator pays to it), masked but for its last digits once it is paid or rejected."""
    found = await session.get(Withdrawal, withdrawal_id, populate_existing=True)
    if found is None:
        raise WithdrawalNotFound()
    names = await admin_queries.provider_names(session, [found.provider_id])
    return page.render(
        "admin/withdrawal.html",
        status=status,
        error=error,
        w=view(found, masked=found.status not in OPEN_STATUSES),
        provider_name=names.get(found.provider_id, ""),
        values=values or {},
        errors=errors or {},
        notice=notice(page),
    )


@router.post("/withdrawals/{withdrawal_id}/approve", response_class=HTMLResponse)
async def approve(
    withdrawal_id: IdPath, page: AdminPage, _form: FormDep, session: SessionDep, now: NowDep
) -> Response:
    try:
        await service.approve(session, withdrawal_id=withdrawal_id, now=now)
    except AppError as exc:
        await session.rollback()  # nothing of a refused action is kept
        return await _withdrawal_page(page, session, withdrawal_id, status=exc.status, error=exc)
    return _done(page, withdrawal_id, "withdrawal_approved")


@router.post("/withdrawals/{withdrawal_id}/paid", response_class=HTMLResponse)
async def mark_paid(
    withdrawal_id: IdPath, page: AdminPage, form: FormDep, session: SessionDep, now: NowDep
) -> Response:
    async def pay(reference: str) -> object:
        return await service.mark_paid(session, withdrawal_id=withdrawal_id, reference=reference, now=now)

    return await _act_with_text(
        page,
        form,
        session,
        withdrawal_id,
        field="reference",
        schema=MarkPaid,
        act=pay,
        notice="withdrawal_paid",
    )


@router.post("/withdrawals/{withdrawal_id}/reject", response_class=HTMLResponse)
async def reject(
    withdrawal_id: IdPath, page: AdminPage, form: FormDep, session: SessionDep, now: NowDep
) -> Response:
    async def refuse(reason: str) -> object:
        return await service.reject(session, withdrawal_id=withdrawal_id, reason=reason, now=now)

    return await _act_with_text(
        page,
        form,
        session,
        withdrawal_id,
        field="reason",
        schema=Reject,
        act=refuse,
        notice="withdrawal_rejected",
    )


async def _act_with_text(
    page: Page,
    form: dict[str, str],
    session: AsyncSession,
    withdrawal_id: int,
    *,
    field: str,
    schema: type[MarkPaid] | type[Reject],
    act: Callable[[str], Awaitable[object]],
    notice: str,
) -> Response:
    """An action that takes one text field (a payout reference, a reason): checked as the API checks it."""
    values = {field: form.get(field, "")}
    body = _valid(schema, values, page)
    if isinstance(body, dict):
        return await _withdrawal_page(page, session, withdrawal_id, values=values, errors=body, status=400)
    try:
        await act(getattr(body, field))
    except AppError as exc:
        await session.rollback()  # nothing of a refused action is kept
        return await _withdrawal_page(
            page, session, withdrawal_id, values=values, status=exc.status, error=exc
        )
    return _done(page, withdrawal_id, notice)


def _valid(schema: type[Body], values: dict[str, str], page: Page) -> Body | dict[str, str]:
    """The posted fields as the API's body, or a translated message for each field that is wrong."""
    try:
        return schema.model_validate(values)
    except ValidationError as exc:
        return field_errors(exc, page.locale)


def _done(page: Page, withdrawal_id: int, outcome: str) -> Response:
    return back_with_notice(page, {}, default=f"/admin/withdrawals/{withdrawal_id}", notice=outcome)
