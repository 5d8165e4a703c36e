"""Who is calling: renter and provider keys, and the admin token, as FastAPI dependencies.

``CurrentRenter`` and ``CurrentProvider`` load the caller's row in the request's session; ``RenterKey`` and
``ProviderKey`` give only who is calling, from the key cache (dcp.key_cache): no database read on a hit."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, APIKeyQuery
from sqlalchemy import literal, select

from dcp.config import Settings
from dcp.db.engine import Database
from dcp.db.session import SessionDep
from dcp.deps import SettingsDep
from dcp.key_cache import KeyCache, KeyHolder
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


def _bearer(request: Request) -> str | None:
    authorization = request.headers.get("authorization", "")
    return authorization[7:].strip() if authorization.lower().startswith("bearer ") else None


async def presented_key(request: Request) -> str | None:
    """The API key from a header, a bearer token, ``?key=``, or a body field, in that order."""
    for header in ("x-renter-key", "x-provider-key", "x-api-key"):
        if value := request.headers.get(header):
            return value
    if value := _bearer(request):
        return value
    if value := request.query_params.get("key"):
        return value
    if request.method in ("POST", "PUT", "PATCH") and "json" in request.headers.get("content-type", ""):
        try:
            body = json.loads(await request.body() or b"null")
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth: the endpoint says
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


def key_cache(request: Request) -> KeyCache:
    cache: KeyCache = request.app.state.key_cache
    return cache


async def current_renter(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    _h: Annotated[str | None, Depends(_renter_header)] = None,
    _q: Annotated[str | None, Depends(_key_query)] = None,
) -> Renter:
    """The calling renter's row, read in the request's session (for endpoints that read or write it)."""
    key = await _key_for(request, keys.Role.renter)
    digest = keys.digest(key, secret=settings.secret_bytes)
    cache = key_cache(request)
    generation = cache.generation
    renter = (await session.execute(select(Renter).where(Renter.key_digest == digest))).scalar_one_or_none()
    if renter is None or not keys.same_digest(renter.key_digest, digest):
        raise Unauthorized("Invalid or revoked API key")
    cache.put(digest, KeyHolder(keys.Role.renter, renter.id, renter.status), generation=generation)
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
    """The calling provider's row; a suspended one authenticates too, so its daemon can learn why it idles."""
    key = await _key_for(request, keys.Role.provider)
    digest = keys.digest(key, secret=settings.secret_bytes)
    cache = key_cache(request)
    generation = cache.generation
    found = await session.execute(select(Provider).where(Provider.key_digest == digest))
    provider = found.scalar_one_or_none()
    if provider is None or not keys.same_digest(provider.key_digest, digest):
        raise Unauthorized("Invalid or revoked API key")
    holder = KeyHolder(keys.Role.provider, provider.id, provider.approval_status, provider.paused)
    cache.put(digest, holder, generation=generation)
    acting_as(f"provider:{provider.id}")
    return provider


async def key_holder(db: Database, cache: KeyCache, *, role: keys.Role, digest: str) -> KeyHolder | None:
    """Who holds the key with this digest: from the cache, else from the database (then cached)."""
    if (holder := cache.get(digest)) is not None:
        return holder
    generation = cache.generation
    if role is keys.Role.renter:
        query = select(Renter.id, Renter.key_digest, Renter.status, literal(False))
    else:
        query = select(Provider.id, Provider.key_digest, Provider.approval_status, Provider.paused)
    table = Renter if role is keys.Role.renter else Provider
    async with db.reader() as session:
        row = (await session.execute(query.where(table.key_digest == digest))).one_or_none()
    if row is None or not keys.same_digest(row[1], digest):
        return None
    holder = KeyHolder(role, row[0], row[2], bool(row[3]))
    cache.put(digest, holder, generation=generation)
    return holder


async def _holder(request: Request, settings: Settings, role: keys.Role) -> KeyHolder:
    key = await _key_for(request, role)
    digest = keys.digest(key, secret=settings.secret_bytes)
    holder = await key_holder(request.app.state.db, key_cache(request), role=role, digest=digest)
    if holder is None:
        raise Unauthorized("Invalid or revoked API key")
    acting_as(holder.actor)
    return holder


async def provider_key_digest(request: Request) -> str:
    """The digest of the provider key presented, not yet looked up: for an endpoint whose own write looks it
    up (the heartbeat, whose batch finds its providers by digest and answers 401 for an unknown one).

    It declares no security-scheme dependencies and reads the settings from the app: each dependency solved
    costs every heartbeat. Its route states its security with ``PROVIDER_KEY_SECURITY`` instead."""
    key = await _key_for(request, keys.Role.provider)
    settings: Settings = request.app.state.settings
    return keys.digest(key, secret=settings.secret_bytes)


# The OpenAPI security of a route authenticated by provider_key_digest, as provider_key's header and query
# dependencies would state it (for the docs, the SDKs and tests/api/test_access_matrix.py).
PROVIDER_KEY_SECURITY: dict[str, Any] = {"security": [{"ProviderKey": []}, {"KeyQuery": []}]}


async def renter_key(
    request: Request,
    settings: SettingsDep,
    _h: Annotated[str | None, Depends(_renter_header)] = None,
    _q: Annotated[str | None, Depends(_key_query)] = None,
) -> KeyHolder:
    """The calling renter, without its row: for endpoints that need only who it is. Served from the key
    cache, so a change made on another replica is seen here within ``auth_cache_seconds``."""
    holder = await _holder(request, settings, keys.Role.renter)
    if holder.status != "active":
        raise Forbidden("This renter account is suspended")
    return holder


async def renter_of(request: Request) -> KeyHolder:
    """``RenterKey`` from the request alone, as endpoints served by ``dcp.kit.fast_route`` authenticate."""
    return await renter_key(request, request.app.state.settings)


async def provider_key(
    request: Request,
    settings: SettingsDep,
    _h: Annotated[str | None, Depends(_provider_header)] = None,
    _q: Annotated[str | None, Depends(_key_query)] = None,
) -> KeyHolder:
    """The calling provider, without its row (suspended ones too, as for :func:`current_provider`)."""
    return await _holder(request, settings, keys.Role.provider)


async def require_admin(
    request: Request,
    settings: SettingsDep,
    _h: Annotated[str | None, Depends(_admin_header)] = None,
) -> None:
    token = request.headers.get("x-admin-token") or _bearer(request)
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
# The caller without its row, from the key cache: cheaper, for endpoints that only need who is calling.
RenterKey = Annotated[KeyHolder, Depends(renter_key)]
ProviderKey = Annotated[KeyHolder, Depends(provider_key)]
ProviderKeyDigest = Annotated[str, Depends(provider_key_digest)]
AdminDep = Depends(require_admin)


@dataclass(frozen=True)
class Principal:
    """Whoever is calling an endpoint open to several roles."""

    role: str  # renter | provider | admin
    id: int | None = None


async def current_principal(
    request: Request,
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
    if key and keys.key_role(key) is None:
        if key == _bearer(request):  # a bearer token that is no API key may be the admin token
            await require_admin(request, settings)
            return Principal("admin")
        raise Unauthorized("Invalid or revoked API key")  # sent as a renter or provider key
    if key and keys.key_role(key) is keys.Role.provider:
        provider = await provider_key(request, settings)
        return Principal("provider", provider.id)
    renter = await renter_key(request, settings)
    return Principal("renter", renter.id)


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
