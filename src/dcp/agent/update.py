"""Self-update: fetch the daemon release, check its Ed25519 signature with the pinned key, swap it in."""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import os
import re
import shutil
import sys
import time
import zipfile
import zipimport
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("dcp.agent.update")

UPDATE_PATH = "/api/providers/download/update"
# EX_TEMPFAIL: "try again". The service manager (systemd Restart=always, the Windows launcher loop) starts
# the daemon again, now on the new code.
RESTART_EXIT_CODE = 75
MAX_RELEASE_BYTES = 64 * 1024 * 1024
_PURPOSE = b"dcp-daemon-release-v1"
_REQUIRED_MEMBERS = ("__main__.py", "dcp/__init__.py", "dcp/agent/main.py")


class UpdateRefused(Exception):
    """A release that must not be installed; the message says why."""


@dataclass(frozen=True)
class Release:
    version: str
    archive: bytes
    sha256: str
    signature: str  # hex of the 64-byte Ed25519 signature over signed_message(version, sha256)


def signed_message(version: str, sha256: str) -> bytes:
    """What the operator's key signs: a purpose label, the version and the archive's SHA-256 (hex)."""
    return b"\n".join((_PURPOSE, version.encode(), sha256.encode()))


def parse_version(text: str) -> tuple[int, ...]:
    """``"1.3.2"`` → ``(1, 3, 2)``; text without digits is ``(0,)``, older than any release."""
    return tuple(int(part) for part in re.findall(r"\d+", text)[:4]) or (0,)


def verify(release: Release, *, public_key: str, current_version: str) -> None:
    """Raise UpdateRefused unless the archive is whole, signed with the pinned key, and newer than us."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    digest = hashlib.sha256(release.archive).hexdigest()
    if not hmac.compare_digest(digest, release.sha256.lower()):
        raise UpdateRefused("the download is truncated or altered: its SHA-256 does not match the manifest")
    try:
        pinned = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key))
        pinned.verify(bytes.fromhex(release.signature), signed_message(release.version, digest))
    except (ValueError, InvalidSignature):
        raise UpdateRefused("the signature does not match the release key pinned at install time") from None
    if parse_version(release.version) <= parse_version(current_version):
        raise UpdateRefused(f"release {release.version} is not newer than this daemon ({current_version})")
    try:
        names = set(zipfile.ZipFile(io.BytesIO(release.archive)).namelist())
    except zipfile.BadZipFile:
        raise UpdateRefused("the release is not a daemon archive") from None
    if missing := [name for name in _REQUIRED_MEMBERS if name not in names]:
        raise UpdateRefused(f"the release is not a daemon archive (no {', '.join(missing)})")


async def fetch(http: httpx.AsyncClient) -> Release:
    """Download the release and its manifest headers; nothing is written to disk here."""
    async with http.stream("GET", UPDATE_PATH, timeout=httpx.Timeout(120.0, connect=10.0)) as answer:
        if answer.status_code != 200:
            await answer.aread()
            raise UpdateRefused(f"the server answered {answer.status_code}: {_error_of(answer)}")
        if int(answer.headers.get("content-length") or 0) > MAX_RELEASE_BYTES:
            raise UpdateRefused("the release is larger than any daemon archive")
        chunks, size = [], 0
        async for chunk in answer.aiter_bytes():
            size += len(chunk)
            if size > MAX_RELEASE_BYTES:
                raise UpdateRefused("the release is larger than any daemon archive")
            chunks.append(chunk)
    headers = answer.headers
    try:
        return Release(
            version=headers["x-dcp-release-version"],
            archive=b"".join(chunks),
            sha256=headers["x-dcp-release-sha256"],
            signature=headers["x-dcp-release-signature"],
        )
    except KeyError as exc:
        raise UpdateRefused(f"the server sent no {exc.args[0]} header") from None


def _error_of(answer: httpx.Response) -> str:
    try:
        body: Any = answer.json()
    except ValueError:
        return answer.text[:200]
    return str(body.get("error") if isinstance(body, dict) else body)[:200]


def install_archive(release: Release, target: Path) -> None:
    """Write the release next to ``target``, check what landed on disk, then swap it in with one rename.

    The old archive stays beside it as ``<name>.previous`` so an operator can roll back by hand.
    """
    temporary = target.with_name(f".{target.name}.{os.getpid()}.new")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, target.stat().st_mode & 0o777)
        with os.fdopen(fd, "wb") as out:
            out.write(release.archive)
            out.flush()
            os.fsync(out.fileno())
        if hashlib.sha256(temporary.read_bytes()).hexdigest() != release.sha256.lower():
            raise UpdateRefused("the copy written to disk differs from the verified release")
        shutil.copy2(target, target.with_name(target.name + ".previous"))
        os.replace(temporary, target)  # atomic: a crash leaves the old archive or the new one, never half
    finally:
        temporary.unlink(missing_ok=True)
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        directory = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def running_archive() -> Path | None:
    """The zipapp this daemon runs from, or None when it runs from an installed Python package."""
    loader = sys.modules[__name__].__loader__
    return Path(loader.archive) if isinstance(loader, zipimport.zipimporter) else None


class Updater:
    """Decides when to update and fetches and verifies a release; the daemon installs it once it stopped."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        public_key: str,
        auto_update: bool,
        current_version: str,
        target: Path | None,
        retry_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.http, self.public_key, self.auto_update = http, public_key, auto_update
        self.current_version, self.target = current_version, target
        self.retry_seconds, self.clock = retry_seconds, clock
        self._next_try = float("-inf")

    def wanted(self, answer: dict[str, Any]) -> bool:
        """True when the server asks for an update this daemon should try now."""
        asked = bool(answer.get("needs_update")) or (
            self.auto_update and bool(answer.get("update_available"))
        )
        return asked and self.clock() >= self._next_try

    async def prepare(self) -> Release | None:
        """A verified release ready to install, or None (the reason is logged; retried after a while)."""
        self._next_try = self.clock() + self.retry_seconds
        if self.target is None:
            log.warning(
                "an update is due, but this daemon runs from an installed package: update it with pip"
            )
            return None
        if not self.public_key:
            log.warning(
                "an update is due, but no release key was pinned at install time: rerun the installer"
            )
            return None
        try:
            release = await fetch(self.http)
            verify(release, public_key=self.public_key, current_version=self.current_version)
        except UpdateRefused as exc:
            log.error("update refused: %s; this daemon keeps running unchanged", exc)
            return None
        except httpx.HTTPError as exc:
            log.warning("update not downloaded (%s); retrying later", type(exc).__name__)
            return None
        log.info("release %s verified; restarting into it", release.version)
        return release

    def install(self, release: Release) -> int:
        """Install a verified release once the daemon stopped; returns the exit code the process ends with."""
        if self.target is None:
            return 0
        try:
            install_archive(release, self.target)
        except (OSError, UpdateRefused) as exc:
            log.error("release %s not installed (%s); the old daemon stays", release.version, exc)
            return 1
        log.info(
            "installed release %s into %s; exiting with %d so the service manager restarts it",
            release.version,
            self.target,
            RESTART_EXIT_CODE,
        )
        return RESTART_EXIT_CODE
