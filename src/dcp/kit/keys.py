"""API keys: random tokens with a readable prefix, kept only as HMAC-SHA256 digests."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum


class Role(StrEnum):
    renter = "renter"
    provider = "provider"


# The seeds spell the same keys with an older ``dcp-`` prefix; both are accepted, ``dc1-`` is issued.
_LEGACY_PREFIX = "dcp-"
_PREFIX = "dc1-"


def new_key(role: Role) -> str:
    return f"{_PREFIX}{role.value}-{secrets.token_urlsafe(32)}"


def normalize(key: str) -> str:
    key = key.strip()
    if key.startswith(_LEGACY_PREFIX):
        return _PREFIX + key[len(_LEGACY_PREFIX) :]
    return key


def key_role(key: str) -> Role | None:
    """The role a key's prefix claims, or None when it has no known prefix."""
    key = normalize(key)
    for role in Role:
        if key.startswith(f"{_PREFIX}{role.value}-"):
            return role
    return None


def digest(key: str, *, secret: bytes) -> str:
    """The stored form of a key: HMAC-SHA256 under the server secret, hex."""
    return hmac.new(secret, normalize(key).encode(), hashlib.sha256).hexdigest()


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
