"""Daemon releases: the operator's Ed25519 release key and the signed daemon package daemons update to."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, Field

from dcp import __version__
from dcp.agent.update import signed_message
from dcp.config import Settings
from dcp.kit.errors import NotFound

log = logging.getLogger("dcp.providers.releases")
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# What the daemon imports: its own package and the two pure helpers it shares with the server.
_DAEMON_FILES = ("__init__.py", "agent", "kit/__init__.py", "kit/http11.py", "kit/keys.py", "kit/signing.py")


class UpdatesNotOffered(NotFound):
    """This server has no release key, so it signs no daemon release."""

    def __init__(self) -> None:
        super().__init__("This server does not offer daemon updates: no release key is configured")


class ReleaseKey(BaseModel):
    algorithm: Literal["ed25519"] = "ed25519"
    public_key: str = Field(description="The raw 32-byte public key in hex, as the installer pins it")
    version: str = Field(description="The daemon version this server's release carries")


@dataclass(frozen=True)
class SignedRelease:
    version: str
    archive: bytes
    sha256: str
    signature: str  # hex; Ed25519 over dcp.agent.update.signed_message(version, sha256)

    @property
    def headers(self) -> dict[str, str]:
        return {
            "x-dcp-release-version": self.version,
            "x-dcp-release-sha256": self.sha256,
            "x-dcp-release-signature": self.signature,
        }


def daemon_archive(embedded: dict[str, Any] | None = None) -> bytes:
    """The daemon as a zipapp (``python dcp-daemon.pyz`` runs it); ``embedded`` (server URL and key) is
    written in for the plain download, and left out of the release that every daemon updates to."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__main__.py", "import sys\nfrom dcp.agent.main import main\nsys.exit(main())\n")
        for name in _DAEMON_FILES:
            for path in _files(_PACKAGE_ROOT / name):
                archive.write(path, f"dcp/{path.relative_to(_PACKAGE_ROOT).as_posix()}")
        if embedded is not None:
            archive.writestr("dcp/agent/embedded.json", json.dumps(embedded))
    return buffer.getvalue()


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)


@lru_cache(maxsize=4)
def _private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return key


def _key(settings: Settings) -> Ed25519PrivateKey:
    path = settings.daemon.release_key_file
    if path is None:
        raise UpdatesNotOffered()
    try:
        return _private_key(path)
    except (OSError, ValueError) as exc:
        log.error("the release key %s cannot be used (%s): no daemon updates are offered", path, exc)
        raise UpdatesNotOffered() from exc


def public_key(settings: Settings) -> ReleaseKey:
    """The key daemons pin; UpdatesNotOffered (404) when the server has none."""
    raw = _key(settings).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return ReleaseKey(public_key=raw.hex(), version=__version__)


def pinned_key_or_empty(settings: Settings) -> str:
    """What an installer writes into the daemon's config: the public key, or nothing (no updates)."""
    try:
        return public_key(settings).public_key
    except UpdatesNotOffered:
        return ""


def current_release(settings: Settings) -> SignedRelease:
    """This server's daemon, as one archive without any provider's key, signed with the release key."""
    return _signed(_key(settings), __version__)


@lru_cache(maxsize=4)
def _signed(key: Ed25519PrivateKey, version: str) -> SignedRelease:
    archive = daemon_archive()
    digest = hashlib.sha256(archive).hexdigest()
    signature = key.sign(signed_message(version, digest)).hex()
    return SignedRelease(version=version, archive=archive, sha256=digest, signature=signature)
