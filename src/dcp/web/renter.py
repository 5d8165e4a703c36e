"""Renter account pages: register, dashboard, statement (with CSV), key rotation, and top-up."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from dcp.billing import statements
from dcp.billing.ledger import Account
from dcp.db.session import SessionDep
from dcp.deps import NowDep
from dcp.jobs import views
from dcp.kit.errors import AppError
from dcp.kit.pagination import PageDep as ListPageDep
from dcp.models import Renter
from dcp.payments import service as payments
from dcp.renters import service
from dcp.renters.schemas import RenterRegister
from dcp.web.context import FormDep, PageDep, RenterPage, SignInRequired, key_digest, sign_in
from dcp.web.forms import field_errors, whole_number

router = APIRouter(prefix="/renter", include_in_schema=False)


@router.get("/register", response_class=HTMLResponse)
async def register_form(page: PageDep) -> Response:
    return page.render("renter/register.html", values={}, errors={})


@router.post("/register", response_class=HTMLResponse)
async def register(page: PageDep, form: FormDep, session: SessionDep, now: NowDep) -> Response:
    values = {name: form.get(name, "") for name in ("name", "email", "organization", "phone")}
    try:
        data = RenterRegister.model_validate({k: v for k, v in values.items() if v})
        renter, key = await service.register(session, data=data, settings=page.settings, now=now)
    except ValidationError as exc:
        errors = field_errors(exc, page.locale)
        return page.render("renter/register.html", status=400, values=values, errors=errors)
    except AppError as exc:
        return page.render("renter/register.html", status=exc.status, values=values, errors={}, error=exc)
    sign_in(
        page, role="renter", account_id=renter.id, name=renter.name, key_digest_or_token=key_digest(page, key)
    )
    return page.render("renter/key_shown.html", status=201, key=key, first_time=True)


@router.get("", response_class=HTMLResponse)
async def dashboard(page: RenterPage, session: SessionDep) -> Response:
    renter_id = page.account_id
    wallet = await service.balance(session, renter_id)
    recent, total = await views.recent(session, renter_id=renter_id)
    return page.render("renter/dashboard.html", wallet=wallet, recent=recent, total_jobs=total)


@router.get("/statement", response_model=None)
async def statement(
    page: RenterPage, session: SessionDep, listing: ListPageDep, query: statements.StatementFilterDep
) -> Response:
    renter_id = page.account_id
    rows, total = await statements.lines(
        session, account=Account.renter_available, owner_id=renter_id, query=query, page=listing
    )
    if query.csv:
        return page.finish(statements.csv_download(rows, f"dcp-statement-renter-{renter_id}.csv"))
    wallet = await service.balance(session, renter_id)
    return page.render("renter/statement.html", rows=rows, total=total, listing=listing, wallet=wallet)


@router.get("/key", response_class=HTMLResponse)
async def key_page(page: RenterPage) -> Response:
    return page.render("renter/key.html")


@router.post("/key", response_class=HTMLResponse)
async def rotate_key(page: RenterPage, _form: FormDep, session: SessionDep) -> Response:
    renter = await session.get(Renter, page.account_id)
    if renter is None:
        raise SignInRequired(page.request.url.path)
    key = await service.rotate_key(session, renter=renter, settings=page.settings)
    sign_in(
        page, role="renter", account_id=renter.id, name=renter.name, key_digest_or_token=key_digest(page, key)
    )
    return page.render("renter/key_shown.html", key=key, first_time=False)


@router.get("/topup", response_class=HTMLResponse)
async def topup_form(page: RenterPage) -> Response:
    return page.render("renter/topup.html", amount="", errors={})


@router.post("/topup", response_class=HTMLResponse)
async def topup(page: RenterPage, form: FormDep, session: SessionDep, now: NowDep) -> Response:
    """Starts a card payment and sends the browser to the payment page; the balance moves on its webhook."""
    amount = whole_number(form.get("amount_sar"))
    limits = page.settings.moyasar
    low, high = limits.min_topup_halala // 100, limits.max_topup_halala // 100
    if not isinstance(amount, int) or not low <= amount <= high:
        message = page.t("renter.topup_range", min=page.locale.number(low), max=page.locale.number(high))
        return page.render(
            "renter/topup.html", status=400, amount=form.get("amount_sar", ""), errors={"amount_sar": message}
        )
    try:
        topup = await payments.start_topup(
            session,
            gateway=page.request.app.state.payment_gateway,
            renter_id=page.account_id,
            amount_halala=amount * 100,
            settings=page.settings,
            now=now,
        )
    except AppError as exc:
        return page.render("renter/topup.html", status=exc.status, amount=str(amount), errors={}, error=exc)
    return page.redirect(topup.payment_url)
