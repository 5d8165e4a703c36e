"""Browser sessions and CSRF tokens: HMAC-signed cookies that never hold an API key.

A session cookie names the account and carries a fingerprint of its current key digest (or of the admin
token), so rotating a key or the admin token ends every session made with the old one. The CSRF token is
bound to a random per-browser cookie and checked on every form post.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Literal

Role = Literal["renter", "provider", "admin"]
SESSION_COOKIE = "dcp_session"
CSRF_COOKIE = "dcp_csrf"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class SessionClaim:
    """Who a valid session cookie says the browser is; ``fingerprint`` is checked against the account."""

    role: Role
    account_id: int
    fingerprint: str


def fingerprint(secret_material: str) -> str:
    """A short, non-reversible tag of a key digest or the admin token, stored in the cookie."""
    return hashlib.sha256(secret_material.encode()).hexdigest()[:16]


def _sign(secret: bytes, payload: str) -> str:
    return hmac.new(secret, payload.encode(), hashlib.sha256).hexdigest()


def session_cookie(
    secret: bytes, *, role: Role, account_id: int, fingerprint: str, now: float | None = None
) -> str:
    expires = int((now or time.time()) + SESSION_SECONDS)
    payload = f"{role}.{account_id}.{expires}.{fingerprint}"
    return f"{payload}.{_sign(secret, 'session|' + payload)}"


def read_session(secret: bytes, cookie: str | None, *, now: float | None = None) -> SessionClaim | None:
    """The claim of an untampered, unexpired cookie; None for anything else."""
    if not cookie or cookie.count(".") != 4:
        return None
    payload, signature = cookie.rsplit(".", 1)
    if not hmac.compare_digest(signature, _sign(secret, "session|" + payload)):
        return None
    role, account_id, expires, tag = payload.split(".")
    if role not in ("renter", "provider", "admin") or not account_id.isdigit() or not expires.isdigit():
        return None
    if int(expires) < (now or time.time()):
        return None
    return SessionClaim(role, int(account_id), tag)  # type: ignore[arg-type]


def new_csrf_cookie() -> str:
    return secrets.token_urlsafe(24)


def csrf_token(secret: bytes, csrf_cookie: str) -> str:
    """The token a form must send back; only pages this server rendered for this browser know it."""
    return _sign(secret, "csrf|" + csrf_cookie)[:32]


def csrf_ok(secret: bytes, csrf_cookie: str | None, token: str | None) -> bool:
    if not csrf_cookie or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, csrf_cookie), token)
