"""Admin pages for accounts: providers (approve, suspend) and renters (credit, suspend, activate)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from dcp.admin import service
from dcp.admin.schemas import MAX_CREDIT_HALALA, Credit
from dcp.admin.service import ApprovalStatus, RenterStatus
from dcp.db.session import SessionDep
from dcp.deps import NowDep
from dcp.kit.errors import AppError
from dcp.kit.fields import IdPath, NoNul
from dcp.kit.pagination import PageDep as ListPageDep
from dcp.web.admin_outcome import back_with_notice, notice
from dcp.web.context import AdminPage, FormDep, Page
from dcp.web.forms import field_errors, halala_of

router = APIRouter()
SearchText = Annotated[str | None, Query(max_length=100), NoNul]


@router.get("/providers", response_class=HTMLResponse)
async def providers(
    page: AdminPage,
    session: SessionDep,
    now: NowDep,
    listing: ListPageDep,
    q: SearchText = None,
    approval_status: ApprovalStatus | None = None,
) -> Response:
    found = await service.provider_list(
        session, settings=page.settings, now=now, page=listing, search=q, approval_status=approval_status
    )
    return page.render(
        "admin/providers.html",
        found=found,
        listing=listing,
        q=q or "",
        current=approval_status or "",
        notice=notice(page),
    )


@router.post("/providers/{provider_id}/approve", response_class=HTMLResponse)
async def approve_provider(
    provider_id: IdPath, page: AdminPage, form: FormDep, session: SessionDep
) -> Response:
    return await _set_approval(page, form, session, provider_id=provider_id, status="approved")


@router.post("/providers/{provider_id}/suspend", response_class=HTMLResponse)
async def suspend_provider(
    provider_id: IdPath, page: AdminPage, form: FormDep, session: SessionDep
) -> Response:
    return await _set_approval(page, form, session, provider_id=provider_id, status="suspended")


async def _set_approval(
    page: Page, form: dict[str, str], session: SessionDep, *, provider_id: int, status: ApprovalStatus
) -> Response:
    await service.set_approval(session, provider_id=provider_id, status=status)
    return back_with_notice(page, form, default="/admin/providers", notice=f"provider_{status}")


@router.get("/renters", response_class=HTMLResponse)
async def renters(
    page: AdminPage,
    session: SessionDep,
    listing: ListPageDep,
    q: SearchText = None,
    status: RenterStatus | None = None,
) -> Response:
    found = await service.renter_list(session, page=listing, search=q, status=status)
    return page.render(
        "admin/renters.html",
        found=found,
        listing=listing,
        q=q or "",
        current=status or "",
        notice=notice(page),
    )


@router.get("/renters/{renter_id}", response_class=HTMLResponse)
async def renter(renter_id: IdPath, page: AdminPage, session: SessionDep) -> Response:
    return await _renter_page(page, session, renter_id, values={}, errors={})


async def _renter_page(
    page: Page,
    session: SessionDep,
    renter_id: int,
    *,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    error: AppError | str | None = None,
) -> Response:
    """The renter's figures and the credit form; a fresh form gets a new idempotency key."""
    one = await service.renter_one(session, await service.find_renter(session, renter_id))
    values = {**values, "idempotency_key": values.get("idempotency_key") or secrets.token_urlsafe(18)}
    return page.render(
        "admin/renter.html",
        status=status,
        error=error,
        renter=one,
        values=values,
        errors=errors,
        notice=notice(page),
    )


@router.post("/renters/{renter_id}/credit", response_class=HTMLResponse)
async def credit(
    renter_id: IdPath, page: AdminPage, form: FormDep, session: SessionDep, now: NowDep
) -> Response:
    """Credits once per rendered form: the form's hidden idempotency key makes a second submit a repeat."""
    values = {name: form.get(name, "") for name in ("amount_sar", "reason", "idempotency_key")}
    amount, amount_error = _credit_amount(page, values["amount_sar"])
    try:
        body = Credit.model_validate(
            {
                "amount_halala": amount,
                "reason": values["reason"],
                "idempotency_key": values["idempotency_key"],
            }
        )
    except ValidationError as exc:
        errors = field_errors(exc, page.locale)
        errors.pop("amount_halala", None)
        errors.update({"amount_sar": amount_error} if amount_error else {})
        return await _renter_page(page, session, renter_id, values=values, errors=errors, status=400)
    try:
        credited = await service.credit_renter(
            session,
            renter_id=renter_id,
            amount=body.amount_halala,
            reason=body.reason,
            idempotency_key=body.idempotency_key or "",
            now=now,
        )
    except AppError as exc:
        await session.rollback()  # nothing of a refused credit is kept
        values.pop("idempotency_key")  # this key is spent on another credit: the form gets a new one
        return await _renter_page(
            page, session, renter_id, values=values, errors={}, status=exc.status, error=exc
        )
    done = "credit_repeat" if credited.duplicate else "credited"
    return back_with_notice(page, {}, default=f"/admin/renters/{renter_id}", notice=done)


def _credit_amount(page: Page, text: str) -> tuple[int | None, str | None]:
    """SAR as typed (``25``, ``12.50``, Arabic-Indic digits too) in halala, or what is wrong with it."""
    if not text:
        return None, page.t("forms.err_required")
    halala = halala_of(text)
    if halala is None:
        return None, page.t("admin.err_amount")
    if not 0 < halala <= MAX_CREDIT_HALALA:
        return None, page.t(
            "admin.err_amount_range", min=page.locale.sar(1), max=page.locale.sar(MAX_CREDIT_HALALA)
        )
    return halala, None


@router.post("/renters/{renter_id}/suspend", response_class=HTMLResponse)
async def suspend_renter(renter_id: IdPath, page: AdminPage, form: FormDep, session: SessionDep) -> Response:
    return await _set_renter_status(page, form, session, renter_id=renter_id, status="suspended")


@router.post("/renters/{renter_id}/activate", response_class=HTMLResponse)
async def activate_renter(renter_id: IdPath, page: AdminPage, form: FormDep, session: SessionDep) -> Response:
    return await _set_renter_status(page, form, session, renter_id=renter_id, status="active")


async def _set_renter_status(
    page: Page, form: dict[str, str], session: SessionDep, *, renter_id: int, status: RenterStatus
) -> Response:
    await service.set_renter_status(session, renter_id=renter_id, status=status)
    return back_with_notice(page, form, default=f"/admin/renters/{renter_id}", notice=f"renter_{status}")
