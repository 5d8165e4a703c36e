"""Who is calling: renter and provider keys, and the admin token, as FastAPI dependencies."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery
from sqlalchemy import select

from dcp.db.session import SessionDep
from dcp.deps import SettingsDep
from dcp.kit import keys
from dcp.kit.audit import acting_as
from dcp.kit.errors import Forbidden, Unauthorized
from dcp.models import Provider, Renter

# Declared for the OpenAPI spec (so the docs page can offer key fields); read by presented_key.
_renter_header = APIKeyHeader(
    name="x-renter-key", scheme_name="RenterKey", auto_error=False, description="Renter API key"
)
_provider_header = APIKeyHeader(
    name="x-provider-key", scheme_name="ProviderKey", auto_error=False, description="Provider API key"
)
_admin_header = APIKeyHeader(
    name="x-admin-token", scheme_name="AdminToken", auto_error=False, description="Admin token"
)
_key_query = APIKeyQuery(
    name="key", scheme_name="KeyQuery", auto_error=False, description="API key (seed compatibility)"
)

_BODY_KEY_FIELDS = ("key", "api_key", "renter_key", "provider_key")


async def presented_key(request: Request) -> str | None:
    """The API key from a header, a bearer token, ``?key=``, or a body field, in that order."""
    for header in ("x-renter-key", "x-provider-key", "x-api-key"):
        if value := request.headers.get(header):
            return value
    authorization = request.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    if value := request.query_params.get("key"):
        return value
    if request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            return None
        if isinstance(body, dict):
            for field in _BODY_KEY_FIELDS:
                if isinstance(body.get(field), str):
                    return str(body[field])
    return None


async def _key_for(request: Request, role: keys.Role) -> str:
    key = await presented_key(request)
    if not key and request.headers.get("x-admin-token"):
        raise Forbidden(f"This endpoint needs a {role.value} key; the admin token was given")
    if not key:
        raise Unauthorized(f"A {role.value} API key is required (x-{role.value}-key header or ?key=)")
    claimed = keys.key_role(key)
    if claimed is None:
        raise Unauthorized("Invalid API key")
    if claimed is not role:
        raise Forbidden(f"This endpoint needs a {role.value} key; a {claimed.value} key was given")
    return key


async def current_renter(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _h: Annotated[str | None, Depends(_renter_header)] = None,
    _q: Annotated[str | None, Depends(_key_query)] = None,
) -> Renter:
    key = await _key_for(request, keys.Role.renter)
    digest = keys.digest(key, secret=settings.secret_bytes)
    renter = (await session.execute(select(Renter).where(Renter.key_digest == digest))).scalar_one_or_none()
    if renter is None or not keys.same_digest(renter.key_digest, digest):
        raise Unauthorized("Invalid or revoked API key")
    acting_as(f"renter:{renter.id}")
    if renter.status != "active":
        raise Forbidden("This renter account is suspended")
    return renter


async def current_provider(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _h: Annotated[str | None, Depends(_provider_header)] = None,
    _q: Annotated[str | None, Depends(_key_query)] = None,
) -> Provider:
    """The calling provider; a suspended one still authenticates so its daemon can learn why it idles."""
    key = await _key_for(request, keys.Role.provider)
    digest = keys.digest(key, secret=settings.secret_bytes)
    found = await session.execute(select(Provider).where(Provider.key_digest == digest))
    provider = found.scalar_one_or_none()
    if provider is None or not keys.same_digest(provider.key_digest, digest):
        raise Unauthorized("Invalid or revoked API key")
    acting_as(f"provider:{provider.id}")
    return provider


async def require_admin(
    request: Request,
    settings: SettingsDep,
    _h: Annotated[str | None, Depends(_admin_header)] = None,
) -> None:
    token = request.headers.get("x-admin-token")
    authorization = request.headers.get("authorization", "")
    if not token and authorization.lower().startswith("bearer "):
        token = authorization[7:].strip()
    if not token:
        if await presented_key(request):
            raise Forbidden("This endpoint needs the admin token")
        raise Unauthorized("The admin token is required (x-admin-token header)")
    if keys.key_role(token) is not None:
        raise Forbidden("This endpoint needs the admin token; an API key was given")
    if not hmac.compare_digest(token.encode(), settings.admin_token.encode()):
        raise Unauthorized("Invalid admin token")
    acting_as("admin")


CurrentRenter = Annotated[Renter, Depends(current_renter)]
CurrentProvider = Annotated[Provider, Depends(current_provider)]
AdminDep = Depends(require_admin)


@dataclass(frozen=True)
class Principal:
    """Whoever is calling an endpoint open to several roles."""

    role: str  # renter | provider | admin
    id: int | None = None


async def current_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _r: Annotated[str | None, Depends(_renter_header)] = None,
    _p: Annotated[str | None, Depends(_provider_header)] = None,
    _a: Annotated[str | None, Depends(_admin_header)] = None,
) -> Principal:
    """A renter, a provider or an admin, by whichever credential the request carries."""
    if request.headers.get("x-admin-token"):
        await require_admin(request, settings)
        return Principal("admin")
    key = await presented_key(request)
    if key and keys.key_role(key) is None:  # a bearer token that is no API key may be the admin token
        await require_admin(request, settings)
        return Principal("admin")
    if key and keys.key_role(key) is keys.Role.provider:
        provider = await current_provider(request, session, settings)
        return Principal("provider", provider.id)
    renter = await current_renter(request, session, settings)
    return Principal("renter", renter.id)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
