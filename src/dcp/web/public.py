"""Pages anyone can open: the marketplace home, the language switch, signing in and out."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.db.session import SessionDep
from dcp.deps import NowDep
from dcp.kit import keys
from dcp.models import Provider, Renter
from dcp.providers import market
from dcp.providers.schemas import MarketListing
from dcp.web import session as cookies
from dcp.web.context import FormDep, Page, PageDep, key_digest, local_path, sign_in
from dcp.web.i18n import LANG_COOKIE, LANGS

router = APIRouter(include_in_schema=False)
_MARKET_PAGE = 100
_YEAR = 365 * 24 * 3600
_HOME_OF = {"renter": "/renter", "provider": "/provider", "admin": "/admin"}


async def _market(session: AsyncSession, page: Page, now: NowDep) -> MarketListing:
    return await market.listing(
        session,
        settings=page.settings,
        now=now,
        live_only=False,
        min_vram_gb=None,
        gpu_model=None,
        limit=_MARKET_PAGE,
        offset=0,
    )


@router.get("/", response_class=HTMLResponse)
async def home(page: PageDep, session: SessionDep, now: NowDep) -> Response:
    return page.render("home.html", market=await _market(session, page, now))


@router.get("/marketplace/rows", response_class=HTMLResponse)
async def market_rows(page: PageDep, session: SessionDep, now: NowDep) -> Response:
    """The marketplace table's rows, re-fetched by the home page every few seconds."""
    return page.render("market_rows.html", market=await _market(session, page, now))


@router.get("/lang/{lang}")
async def switch_language(lang: str, page: PageDep, next: Annotated[str | None, Query()] = None) -> Response:
    if lang in LANGS:
        response = RedirectResponse(local_path(next), 303)
        response.set_cookie(LANG_COOKIE, lang, max_age=_YEAR, samesite="lax", path="/")
        return response
    return page.redirect(local_path(next))


@router.get("/signin", response_class=HTMLResponse)
async def signin_form(page: PageDep, next: Annotated[str | None, Query()] = None) -> Response:
    return page.render("signin.html", next=local_path(next, ""))


@router.post("/signin", response_class=HTMLResponse)
async def signin(page: PageDep, form: FormDep, session: SessionDep) -> Response:
    """One box for a renter key, a provider key or the admin token; the credential says which it is."""
    secret = form.get("key", "")
    role = await _sign_in_with(page, session, secret)
    if role is None:
        return page.render(
            "signin.html", status=401, next=form.get("next", ""), error=page.t("common.bad_key")
        )
    return page.redirect(local_path(form.get("next"), _HOME_OF[role]))


async def _sign_in_with(page: Page, session: AsyncSession, secret: str) -> cookies.Role | None:
    role = keys.key_role(secret)
    if role is None:
        token = page.settings.admin_token
        if secret and hmac.compare_digest(secret.encode(), token.encode()):
            sign_in(page, role="admin", account_id=0, name="admin", key_digest_or_token=token)
            return "admin"
        return None
    digest = key_digest(page, secret)
    account: Renter | Provider | None
    if role is keys.Role.renter:
        account = (
            await session.execute(select(Renter).where(Renter.key_digest == digest))
        ).scalar_one_or_none()
        if account is None or account.status != "active":
            return None
        sign_in(page, role="renter", account_id=account.id, name=account.name, key_digest_or_token=digest)
        return "renter"
    account = (
        await session.execute(select(Provider).where(Provider.key_digest == digest))
    ).scalar_one_or_none()
    if account is None:
        return None
    sign_in(page, role="provider", account_id=account.id, name=account.name, key_digest_or_token=digest)
    return "provider"


@router.post("/signout")
async def signout(page: PageDep, _form: FormDep) -> Response:
    page.set_cookies.append((cookies.SESSION_COOKIE, "", 0))
    return page.redirect("/")
