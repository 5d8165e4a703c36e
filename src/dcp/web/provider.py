"""Provider pages: register (key and install commands shown once), dashboard, pause/resume, key rotation."""

from __future__ import annotations

import hmac

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.db.session import SessionDep
from dcp.deps import NowDep
from dcp.kit.errors import AppError
from dcp.models import Provider
from dcp.providers import service
from dcp.providers.downloads import install_command
from dcp.providers.schemas import ProviderRegister
from dcp.web import provider_dashboard as dashboard_data
from dcp.web import provider_withdrawals
from dcp.web.context import FormDep, Page, PageDep, ProviderPage, SignInRequired, key_digest, sign_in
from dcp.web.forms import field_errors

router = APIRouter(prefix="/provider", include_in_schema=False)
router.include_router(provider_withdrawals.router)
_REGISTER_FIELDS = ("name", "email", "gpu_model", "os", "phone")
_INSTALL_OSES = ("linux", "windows")


@router.get("/register", response_class=HTMLResponse)
async def register_form(page: PageDep) -> Response:
    return page.render("provider/register.html", values={"os": "linux"}, errors={})


@router.post("/register", response_class=HTMLResponse)
async def register(page: PageDep, form: FormDep, session: SessionDep, now: NowDep) -> Response:
    values = {name: form.get(name, "") for name in _REGISTER_FIELDS}
    try:
        data = ProviderRegister.model_validate({k: v for k, v in values.items() if v})
        provider, key = await service.register(session, data=data, settings=page.settings, now=now)
    except ValidationError as exc:
        errors = field_errors(exc, page.locale)
        if "phone" in errors:
            errors["phone"] = page.t("provider.err_phone")
        return page.render("provider/register.html", status=400, values=values, errors=errors)
    except AppError as exc:
        await session.rollback()
        return page.render("provider/register.html", status=exc.status, values=values, errors={}, error=exc)
    _sign_in(page, provider, key)
    return page.render(
        "provider/key_shown.html",
        status=201,
        key=key,
        commands=_install_commands(page, key),
        provider=provider,
        first_time=True,
    )


@router.get("", response_class=HTMLResponse)
async def dashboard(page: ProviderPage, session: SessionDep, now: NowDep) -> Response:
    provider = await _provider(page, session)
    jobs, total_jobs = await dashboard_data.recent_jobs(session, provider.id)
    return page.render(
        "provider/dashboard.html",
        provider=provider,
        live=await dashboard_data.live_state(
            session, provider, settings=page.settings, now=now, locale=page.locale
        ),
        earnings=await dashboard_data.earnings(session, provider.id, now=now, locale=page.locale),
        jobs=jobs,
        total_jobs=total_jobs,
    )


@router.get("/live", response_class=HTMLResponse)
async def live(page: PageDep, session: SessionDep, now: NowDep) -> Response:
    """The dashboard's online state and telemetry charts, re-fetched by the page every few seconds."""
    if page.user is None or page.user.role != "provider":
        # Not a redirect: the page would put the sign-in page where the charts were.
        return page.finish(Response(status_code=401))
    provider = await _provider(page, session)
    state = await dashboard_data.live_state(
        session, provider, settings=page.settings, now=now, locale=page.locale
    )
    return page.render("provider/_live.html", provider=provider, live=state)


@router.post("/pause")
async def pause(page: ProviderPage, _form: FormDep, session: SessionDep) -> Response:
    service.set_paused(await _provider(page, session), paused=True)
    return page.redirect("/provider")


@router.post("/resume")
async def resume(page: ProviderPage, _form: FormDep, session: SessionDep) -> Response:
    service.set_paused(await _provider(page, session), paused=False)
    return page.redirect("/provider")


@router.post("/install", response_class=HTMLResponse)
async def install(page: ProviderPage, form: FormDep, session: SessionDep) -> Response:
    """The install commands again: DCP keeps only a digest of the key, so the provider pastes it in."""
    provider = await _provider(page, session)
    key = form.get("key", "")
    if not key or not hmac.compare_digest(key_digest(page, key), provider.key_digest):
        return page.render(
            "provider/install.html", status=400, commands=None, error_key=page.t("provider.err_not_your_key")
        )
    return page.render("provider/install.html", commands=_install_commands(page, key), error_key=None)


@router.post("/key", response_class=HTMLResponse)
async def rotate_key(page: ProviderPage, _form: FormDep, session: SessionDep) -> Response:
    provider = await _provider(page, session)
    key = await service.rotate_key(session, provider=provider, settings=page.settings)
    _sign_in(page, provider, key)
    return page.render(
        "provider/key_shown.html",
        key=key,
        commands=_install_commands(page, key),
        provider=provider,
        first_time=False,
    )


async def _provider(page: Page, session: AsyncSession) -> Provider:
    provider = await session.get(Provider, page.account_id)
    if provider is None:
        raise SignInRequired(page.request.url.path)
    return provider


def _sign_in(page: Page, provider: Provider, key: str) -> None:
    sign_in(
        page,
        role="provider",
        account_id=provider.id,
        name=provider.name,
        key_digest_or_token=key_digest(page, key),
    )


def _install_commands(page: Page, key: str) -> dict[str, str]:
    """The one-line installers, as POST /api/providers/register returns them; they carry the key."""
    return {name: install_command(name, server=page.settings.public_url, key=key) for name in _INSTALL_OSES}
