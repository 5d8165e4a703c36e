"""Where ``dcp login`` keeps the renter's key: ``$XDG_CONFIG_HOME/dcp/credentials.json``, mode 0600."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_BASE_URL = "https://api.dcp.sa"
KEY_VARIABLE = "DCP_API_KEY"
URL_VARIABLE = "DCP_BASE_URL"


class NotLoggedIn(Exception):
    """No key in the flags, the environment or the credentials file."""


@dataclass(frozen=True)
class Credentials:
    api_key: str
    base_url: str


def path() -> Path:
    """The XDG base directory spec: a relative ``XDG_CONFIG_HOME`` is ignored."""
    configured = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(configured) if os.path.isabs(configured) else Path.home() / ".config"
    return base / "dcp" / "credentials.json"


def stored() -> Credentials | None:
    try:
        data = json.loads(path().read_text())
        return Credentials(str(data["api_key"]), str(data["base_url"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(credentials: Credentials) -> Path:
    """Write the file atomically, readable by its owner alone (the key spends the renter's balance)."""
    target = path()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".credentials-")  # created 0600
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(asdict(credentials), handle, indent=2)
        os.chmod(temporary, 0o600)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def forget() -> bool:
    try:
        path().unlink()
    except FileNotFoundError:
        return False
    return True


def resolve(api_key: str | None, base_url: str | None) -> Credentials:
    """The flags first, then ``DCP_API_KEY``/``DCP_BASE_URL``, then what ``dcp login`` stored."""
    saved = stored()
    key = api_key or os.environ.get(KEY_VARIABLE) or (saved.api_key if saved else None)
    if not key:
        raise NotLoggedIn(f"not logged in: run `dcp login` (or pass --api-key, or set {KEY_VARIABLE})")
    url = base_url or os.environ.get(URL_VARIABLE) or (saved.base_url if saved else DEFAULT_BASE_URL)
    return Credentials(key, url.rstrip("/"))
