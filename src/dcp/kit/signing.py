"""Task-spec signing: HMAC-SHA256 over a canonical JSON encoding, with a per-provider key.

The key is derived from the provider's API key (``HMAC(api_key, "dcp-task-signing-v1")``): the server keeps it
from the moment it issues the key, the daemon derives it locally, and nobody else can.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

_PURPOSE = b"dcp-task-signing-v1"


def signing_key_for(api_key: str) -> str:
    return hmac.new(api_key.encode(), _PURPOSE, hashlib.sha256).hexdigest()


def canonical(spec: dict[str, Any]) -> bytes:
    return json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(spec: dict[str, Any], key: str) -> str:
    return hmac.new(key.encode(), canonical(spec), hashlib.sha256).hexdigest()


def verify(spec: dict[str, Any], signature: str, key: str) -> bool:
    return hmac.compare_digest(sign(spec, key), signature)
