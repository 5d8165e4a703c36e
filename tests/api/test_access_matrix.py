"""Every route x every role: the expected answer is derived from each route's own auth dependency, so a new
route is covered the moment it exists. Anonymous callers get 401, other roles' keys 403, revoked keys 401, and
the right role is let in (its answer may still be 400/404/409, never 401/403)."""

from __future__ import annotations

import re

import pytest

from tests.support.factories import register_provider, register_renter

_PATH_VALUES = {
    "provider_id": "1",
    "renter_id": "1",
    "withdrawal_id": "1",
    "job_id": "job-none",
    "path": "v1/models",
}


def _auth_of(operation: dict) -> str:
    """Who may call an operation, read from the security schemes its auth dependency declares."""
    schemes = {name for requirement in operation.get("security", []) for name in requirement}
    if {"RenterKey", "ProviderKey", "AdminToken"} <= schemes:
        return "any"
    for scheme, role in (("AdminToken", "admin"), ("RenterKey", "renter"), ("ProviderKey", "provider")):
        if scheme in schemes:
            return role
    return "public"


@pytest.fixture
async def callers(client, admin):
    renter = await register_renter(client)
    provider = await register_provider(client)
    revoked = await register_renter(client)
    await client.post("/api/renters/rotate-key", headers=revoked.renter_headers)
    return {
        "anonymous": {},
        "renter": renter.renter_headers,
        "provider": provider.provider_headers,
        "admin": admin,
        "revoked": revoked.renter_headers,
    }


async def test_every_route_for_every_role(client, callers):
    spec = (await client.get("/docs/openapi.json")).json()
    operations = [
        (path, method, op) for path, methods in spec["paths"].items() for method, op in methods.items()
    ]
    operations.sort(key=lambda item: "rotate-key" in item[0])  # rotating a caller's key goes last
    checked = 0
    for path, method, operation in operations:
        checked += await _check(client, callers, path, method.upper(), _auth_of(operation))
    assert checked > 200


async def _check(client, callers, path: str, method: str, auth: str) -> int:
    url = path.format(**{name: _PATH_VALUES.get(name, "1") for name in re.findall(r"{(\w+)", path)})
    url = url.replace("{path:path}", _PATH_VALUES["path"])
    params = {"wait": 0} if url.endswith("/jobs/next") else None
    checked = 0
    for caller, headers in callers.items():
        body = {} if method in ("POST", "PUT") else None
        answer = await client.request(method, url, headers=headers, params=params, json=body)
        status, where = (
            answer.status_code,
            f"{caller} {method} {path} -> {answer.status_code} {answer.text[:120]}",
        )
        assert status < 500, where
        if auth == "public":
            continue
        if caller == "anonymous" or (caller == "revoked" and auth in ("renter", "any")):
            assert status == 401, where  # a revoked renter key is as good as none where renters are let in
        elif caller != "revoked" and auth in (caller, "any"):
            assert status not in (401, 403), where
        else:
            assert status == 403, where
        checked += 1
    return checked
