"""The bilingual web pages (English and Arabic), served by the DCP server itself with local assets only."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from dcp.kit.errors import AppError
from dcp.kit.http import app_error, http_error, validation_error
from dcp.web import admin, docs, provider, public, renter, renter_jobs
from dcp.web.context import CsrfRejected, SignInRequired, anonymous_page, sign_in_path

_STATIC = Path(__file__).parent / "static"
_NOT_PAGES = ("/api/", "/v1/", "/v1", "/metrics", "/docs/openapi", "/static/")


def install(app: FastAPI) -> None:
    for pages in (
        public.router,
        renter.router,
        renter_jobs.router,
        provider.router,
        admin.router,
        docs.router,
    ):
        app.include_router(pages)
    app.mount("/static", StaticFiles(directory=_STATIC), name="static")
    app.add_exception_handler(SignInRequired, _to_sign_in)  # type: ignore[arg-type]
    app.add_exception_handler(CsrfRejected, _csrf_rejected)
    app.add_exception_handler(StarletteHTTPException, _not_found_page)  # type: ignore[arg-type]
    app.add_exception_handler(AppError, _error_page)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _invalid_values_page)  # type: ignore[arg-type]


async def _to_sign_in(request: Request, exc: SignInRequired) -> Response:
    page = anonymous_page(request)
    return page.redirect(sign_in_path(exc.next_path))


async def _csrf_rejected(request: Request, _exc: Exception) -> Response:
    page = anonymous_page(request)
    return page.render("error.html", status=403, message=page.t("errors.csrf"))


async def _not_found_page(request: Request, exc: StarletteHTTPException) -> Response:
    """Browsers asking for a page that is not there get a page; API clients keep their JSON."""
    if exc.status_code != 404 or not _wants_page(request):
        return await http_error(request, exc)
    page = anonymous_page(request)
    return page.render("error.html", status=404, message=page.t("errors.status_404"))


def too_many_requests_page(scope: Scope, seconds: int) -> Response | None:
    """The abuse limits' 429 as a page in the visitor's language, for a browser asking for a page (None for
    everything else, which keeps the JSON answer)."""
    request = Request(scope)
    if not _wants_page(request):
        return None
    page = anonymous_page(request)
    message = page.t("errors.too_many", seconds=page.locale.number(seconds))
    response = page.render("error.html", status=429, message=message)
    response.headers["retry-after"] = str(seconds)
    return response


def _is_page(request: Request) -> bool:
    return not request.url.path.startswith(_NOT_PAGES)


def _wants_page(request: Request) -> bool:
    """A browser asking for a page (not an API client, not an asset)."""
    return "text/html" in request.headers.get("accept", "") and _is_page(request)


async def _invalid_values_page(request: Request, exc: RequestValidationError) -> Response:
    """A page asked for with values it cannot take (a hand-edited link: ``?limit=abc``) answers a page in the
    visitor's language, not the API's JSON."""
    if not _is_page(request):
        return await validation_error(request, exc)
    page = anonymous_page(request)
    return page.render("error.html", status=400, message=page.t("errors.status_400"))


async def _error_page(request: Request, exc: AppError) -> Response:
    """A domain error on a page (a job of someone else's, say) answers a page in the visitor's language."""
    if not _is_page(request) or exc.status >= 500:
        return await app_error(request, exc)
    page = anonymous_page(request)
    return page.render("error.html", status=exc.status, message=page.error_text(exc))
