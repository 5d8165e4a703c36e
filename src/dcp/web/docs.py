"""The API reference with Try It Out, read from the OpenAPI spec, and the renter and provider quickstarts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from dcp.openapi import build_spec
from dcp.providers.downloads import install_command
from dcp.web.context import PageDep
from dcp.web.i18n import catalog
from dcp.web.spec_examples import request_example, response_example
from dcp.withdrawals.schemas import MIN_WITHDRAWAL_HALALA

router = APIRouter(prefix="/docs", include_in_schema=False)
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# Renters first (most readers are renters), then providers, then the operators' endpoints.
TAG_ORDER = ("renters", "jobs", "openai", "providers", "provider jobs", "admin", "payments")
UNTAGGED = "other"
# Key fields of Try It Out, in the order a reader meets them; the curl preview names these variables instead.
KEY_SCHEMES = {"RenterKey": "RENTER_KEY", "ProviderKey": "PROVIDER_KEY", "AdminToken": "DC1_ADMIN_TOKEN"}
PROVIDER_KEY_PLACEHOLDER = "dc1-provider-YOUR_KEY"
RENTER_KEY_PLACEHOLDER = "dc1-renter-YOUR_KEY"


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    required: bool
    type: str
    choices: tuple[str, ...]
    default: str
    description: str


@dataclass(frozen=True)
class Operation:
    """One endpoint as the reference shows it; ``key`` ("POST /api/renters/register") names its notes."""

    key: str
    method: str
    path: str
    tag: str
    summary: str
    auth: tuple[str, ...]
    parameters: tuple[Parameter, ...]
    body: str | None
    response: tuple[str, str] | None
    statuses: tuple[str, ...]

    @property
    def slug(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.key.lower()).strip("-")

    @property
    def note_key(self) -> str:
        return f"docs.op.{self.key}"


@dataclass(frozen=True)
class TagGroup:
    tag: str
    operations: list[Operation]

    @property
    def slug(self) -> str:
        return self.tag.replace(" ", "-")

    @property
    def title_key(self) -> str:
        return "docs.tag_" + self.tag.replace(" ", "_")


@dataclass(frozen=True)
class KeyField:
    """A credential Try It Out asks for, and the header it travels in."""

    scheme: str
    header: str
    variable: str


def operations(spec: dict[str, Any]) -> list[Operation]:
    """Every operation of the spec, in the spec's order."""
    return [
        _operation(spec, path, method, operation)
        for path, methods in spec.get("paths", {}).items()
        for method, operation in methods.items()
        if method in HTTP_METHODS
    ]


def _operation(spec: dict[str, Any], path: str, method: str, operation: dict[str, Any]) -> Operation:
    key = f"{method.upper()} {path}"
    auth = dict.fromkeys(name for choice in operation.get("security", []) for name in choice)
    return Operation(
        key=key,
        method=method.upper(),
        path=path,
        tag=(operation.get("tags") or [UNTAGGED])[0],
        summary=operation.get("summary", ""),
        auth=tuple(auth),
        parameters=tuple(_parameter(p) for p in operation.get("parameters", [])),
        body=request_example(key, operation, spec),
        response=response_example(operation, spec),
        statuses=tuple(sorted(operation.get("responses", {}))),
    )


def _parameter(parameter: dict[str, Any]) -> Parameter:
    schema = parameter.get("schema", {})
    kinds = [choice for choice in schema.get("anyOf", [schema]) if choice.get("type") != "null"]
    choices = tuple(str(value) for kind in kinds for value in kind.get("enum", []))
    return Parameter(
        name=parameter["name"],
        location=parameter["in"],
        required=bool(parameter.get("required")),
        type=" | ".join(str(kind.get("type", "string")) for kind in kinds) or "string",
        choices=choices,
        default=_as_text(schema.get("default")),
        description=parameter.get("description", ""),
    )


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def by_tag(found: list[Operation]) -> list[TagGroup]:
    """Operations grouped by their first tag, the known tags in TAG_ORDER and any new ones after them."""
    tags = sorted(
        {op.tag for op in found},
        key=lambda tag: (TAG_ORDER.index(tag) if tag in TAG_ORDER else len(TAG_ORDER), tag),
    )
    return [TagGroup(tag, [op for op in found if op.tag == tag]) for tag in tags]


def key_fields(spec: dict[str, Any]) -> list[KeyField]:
    schemes = spec.get("components", {}).get("securitySchemes", {})
    return [
        KeyField(name, schemes[name]["name"], variable)
        for name, variable in KEY_SCHEMES.items()
        if schemes.get(name, {}).get("in") == "header"
    ]


def scheme_codes(spec: dict[str, Any]) -> dict[str, str]:
    """How each security scheme is sent, as the reference writes it: a header name or ``?key=``."""
    schemes = spec.get("components", {}).get("securitySchemes", {})
    return {
        name: f"?{scheme['name']}=" if scheme.get("in") == "query" else scheme.get("name", "")
        for name, scheme in schemes.items()
    }


def note(op: Operation, lang: str) -> str:
    """The endpoint's note in ``lang`` (tests make sure every operation has one); else the spec's summary."""
    return catalog("ar" if lang == "ar" else "en").get(op.note_key) or op.summary


@router.get("", response_class=HTMLResponse)
async def reference(page: PageDep) -> Response:
    spec = build_spec(page.request.app)
    groups = by_tag(operations(spec))
    return page.render(
        "docs/reference.html",
        groups=groups,
        first_slug=groups[0].operations[0].slug if groups else "",
        key_fields=key_fields(spec),
        scheme_codes=scheme_codes(spec),
        note=note,
        base=page.settings.public_url,
    )


@router.get("/quickstart/renter", response_class=HTMLResponse)
async def renter_quickstart(page: PageDep) -> Response:
    return page.render(
        "docs/quickstart_renter.html",
        base=page.settings.public_url,
        pricing=page.settings.pricing,
        key=RENTER_KEY_PLACEHOLDER,
    )


@router.get("/quickstart/provider", response_class=HTMLResponse)
async def provider_quickstart(page: PageDep) -> Response:
    base = page.settings.public_url
    return page.render(
        "docs/quickstart_provider.html",
        base=base,
        pricing=page.settings.pricing,
        key=PROVIDER_KEY_PLACEHOLDER,
        install={
            name: install_command(name, server=base, key=PROVIDER_KEY_PLACEHOLDER)
            for name in ("linux", "windows")
        },
        min_withdrawal=MIN_WITHDRAWAL_HALALA,
        online_seconds=page.settings.heartbeat_online_seconds,
    )
