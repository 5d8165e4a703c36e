"""What every page handler gets: the language, who is signed in, the CSRF token, and ``render``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.config import Settings
from dcp.db.session import SessionDep
from dcp.kit import keys
from dcp.kit.audit import acting_as
from dcp.kit.errors import AppError
from dcp.models import Provider, Renter
from dcp.web import session as cookies
from dcp.web.i18n import Locale, chosen_lang

AnyResponse = TypeVar("AnyResponse", bound=Response)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# No inline script or style anywhere: every script and stylesheet is a file under /static.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
        "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cache-control": "no-store",
}


@dataclass(frozen=True)
class WebUser:
    role: cookies.Role
    id: int
    name: str


class SignInRequired(Exception):
    """Raised by a page that needs a signed-in account of a role; answered with a redirect to sign in."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


@dataclass
class Page:
    """One request's view of the web: language, account, CSRF cookie, and the settings."""

    request: Request
    settings: Settings
    locale: Locale
    user: WebUser | None
    csrf_cookie: str
    new_csrf_cookie: bool
    set_cookies: list[tuple[str, str, int]] = field(default_factory=list)

    @property
    def csrf(self) -> str:
        return cookies.csrf_token(self.settings.secret_bytes, self.csrf_cookie)

    def t(self, key: str, **values: object) -> str:
        return self.locale.t(key, **values)

    def error_text(self, error: AppError) -> str:
        """A domain error in this page's language: by its class, else by its status."""
        if self.locale.lang == "en":
            return error.message
        for key in (f"errors.{type(error).__name__}", f"errors.status_{error.status}"):
            text = self.t(key)
            if text != key:
                return text
        return self.t("errors.generic")

    def render(
        self, template: str, *, status: int = 200, error: AppError | str | None = None, **values: Any
    ) -> HTMLResponse:
        """The template in this page's language; ``error`` (a domain error or a message) shows on top."""
        html = TEMPLATES.get_template(template).render(
            error=self.error_text(error) if isinstance(error, AppError) else error,
            page=self,
            user=self.user,
            lang=self.locale.lang,
            dir=self.locale.dir,
            here=self.here,
            **self.locale.formatters,
            **values,
        )
        return self.finish(HTMLResponse(html, status))

    @property
    def here(self) -> str:
        """This page's path and query: for a form, or a language switch, to come back to."""
        query = self.request.url.query
        return self.request.url.path + (f"?{query}" if query else "")

    def redirect(self, path: str) -> RedirectResponse:
        return self.finish(RedirectResponse(path, 303))

    async def still_signed_in(self) -> bool:
        """Whether this page's session still names its account with the key it was made with (for a long
        stream: a key rotated, or a renter suspended, since it opened ends it)."""
        cookie = self.request.cookies.get(cookies.SESSION_COOKIE)
        claim = cookies.read_session(self.settings.secret_bytes, cookie)
        if claim is None:
            return False
        async with self.request.app.state.db.reader() as session:
            return await _signed_in(session, self.settings, claim) is not None

    @property
    def account_id(self) -> int:
        """The signed-in account's id (0 for the admin); pages behind a role guard never see None."""
        if self.user is None:
            raise SignInRequired(self.here)
        return self.user.id

    def finish(self, response: AnyResponse) -> AnyResponse:
        response.headers.update(SECURITY_HEADERS)
        secure = self.settings.public_url.startswith("https://")
        if self.new_csrf_cookie:
            response.set_cookie(
                cookies.CSRF_COOKIE, self.csrf_cookie, httponly=True, samesite="strict", secure=secure
            )
        for name, value, max_age in self.set_cookies:
            response.set_cookie(
                name, value, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/"
            )
        return response


def anonymous_page(request: Request) -> Page:
    """The page as seen before (or without) knowing who is signed in; error pages use it as it is."""
    settings: Settings = request.app.state.settings
    csrf_cookie = request.cookies.get(cookies.CSRF_COOKIE)
    return Page(
        request=request,
        settings=settings,
        locale=Locale(chosen_lang(request), settings.timezone),
        user=None,
        csrf_cookie=csrf_cookie or cookies.new_csrf_cookie(),
        new_csrf_cookie=csrf_cookie is None,
    )


async def _page(request: Request, session: SessionDep) -> Page:
    page = anonymous_page(request)
    claim = cookies.read_session(page.settings.secret_bytes, request.cookies.get(cookies.SESSION_COOKIE))
    if claim is not None:
        page.user = await _signed_in(session, page.settings, claim)
    if page.user is not None:
        acting_as("admin" if page.user.role == "admin" else f"{page.user.role}:{page.user.id}")
    return page


async def _signed_in(
    session: AsyncSession, settings: Settings, claim: cookies.SessionClaim
) -> WebUser | None:
    """The account a session names, if the key it was made with is still the account's key."""
    if claim.role == "admin":
        if claim.fingerprint != cookies.fingerprint(settings.admin_token):
            return None
        return WebUser("admin", 0, "admin")
    account: Renter | Provider | None
    if claim.role == "renter":
        account = await session.get(Renter, claim.account_id)
        if account is not None and account.status != "active":
            return None
    else:
        account = await session.get(Provider, claim.account_id)
    if account is None or cookies.fingerprint(account.key_digest) != claim.fingerprint:
        return None
    return WebUser(claim.role, account.id, account.name)


PageDep = Annotated[Page, Depends(_page)]


def sign_in(page: Page, *, role: cookies.Role, account_id: int, name: str, key_digest_or_token: str) -> None:
    """Signs this browser in from this response on (the page being rendered shows the account already)."""
    page.user = WebUser(role, account_id, name)
    value = cookies.session_cookie(
        page.settings.secret_bytes,
        role=role,
        account_id=account_id,
        fingerprint=cookies.fingerprint(key_digest_or_token),
    )
    page.set_cookies.append((cookies.SESSION_COOKIE, value, cookies.SESSION_SECONDS))


def key_digest(page: Page, key: str) -> str:
    return keys.digest(key, secret=page.settings.secret_bytes)


def _require(role: cookies.Role) -> Any:
    async def dependency(page: PageDep) -> Page:
        if page.user is None or page.user.role != role:
            raise SignInRequired(_come_back_to(page.request, default=f"/{role}"))
        return page

    return Depends(dependency)


def _come_back_to(request: Request, *, default: str) -> str:
    """Where signing in leads back: this page; or, for a form posted after the session ended, the page the
    form was on (the form's own address answers no GET: it led to a 405), else the role's home."""
    if request.method == "GET":
        return request.url.path + (f"?{request.url.query}" if request.url.query else "")
    came_from = urlsplit(request.headers.get("referer", ""))
    if came_from.netloc != request.url.netloc or not came_from.path:
        return default
    return local_path(came_from.path + (f"?{came_from.query}" if came_from.query else ""), default)


RenterPage = Annotated[Page, _require("renter")]
ProviderPage = Annotated[Page, _require("provider")]
AdminPage = Annotated[Page, _require("admin")]


async def posted_form(request: Request, page: PageDep) -> dict[str, str]:
    """The posted form's fields, after checking its CSRF token against this browser's cookie."""
    form = await request.form()
    fields = {name: value.strip() for name, value in form.items() if isinstance(value, str)}
    if not cookies.csrf_ok(
        page.settings.secret_bytes, request.cookies.get(cookies.CSRF_COOKIE), fields.get("csrf")
    ):
        raise CsrfRejected
    return fields


class CsrfRejected(Exception):
    """A form post without this browser's CSRF token: answered 403 with a page that says to reload."""


FormDep = Annotated[dict[str, str], Depends(posted_form)]


def sign_in_path(next_path: str) -> str:
    return "/signin?next=" + quote(next_path, safe="/")


def local_path(candidate: str | None, default: str = "/") -> str:
    """``candidate`` if it is a path on this site (never another host), else ``default``."""
    if candidate and candidate.startswith("/") and not candidate.startswith("//") and "\\" not in candidate:
        return candidate
    return default
