"""Self-update: only a whole, newer release signed with the pinned Ed25519 key is installed, atomically."""

from __future__ import annotations

import hashlib
import io
import logging
import stat
import zipfile
from dataclasses import replace

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from dcp import __version__
from dcp.agent.config import AgentConfig
from dcp.agent.daemon import Daemon
from dcp.agent.update import (
    RESTART_EXIT_CODE,
    Release,
    Updater,
    UpdateRefused,
    install_archive,
    signed_message,
    verify,
)
from dcp.config import ConfigError, DaemonSettings, Settings, load_settings, write_release_key
from dcp.providers import releases

OLD = "0.0.1"


@pytest.fixture
def operator(tmp_path):
    """The server's settings with a release key, and the release it signs."""
    path = tmp_path / "server" / "release-key.pem"
    write_release_key(path)
    settings = Settings(data_dir=tmp_path / "server", daemon=DaemonSettings(release_key_file=path))
    signed = releases.current_release(settings)
    release = Release(signed.version, signed.archive, signed.sha256, signed.signature)
    return releases.public_key(settings).public_key, release


def _hex_public(key: Ed25519PrivateKey) -> str:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _signed(archive: bytes, version: str, key: Ed25519PrivateKey) -> Release:
    digest = hashlib.sha256(archive).hexdigest()
    return Release(version, archive, digest, key.sign(signed_message(version, digest)).hex())


class TestVerify:
    def test_the_servers_release_verifies_and_carries_no_key(self, operator):
        pinned, release = operator
        verify(release, public_key=pinned, current_version=OLD)
        names = zipfile.ZipFile(io.BytesIO(release.archive)).namelist()
        assert "dcp/agent/update.py" in names and "dcp/agent/embedded.json" not in names
        assert not any(name.startswith("dcp/billing") for name in names)

    def test_a_truncated_or_altered_archive_is_refused(self, operator):
        pinned, release = operator
        for archive in (release.archive[:-100], release.archive[:-1] + b"x"):
            with pytest.raises(UpdateRefused, match="truncated or altered"):
                verify(replace(release, archive=archive), public_key=pinned, current_version=OLD)

    def test_an_altered_archive_with_its_own_hash_is_refused(self, operator):
        pinned, release = operator
        archive = release.archive + b"\0"
        forged = replace(release, archive=archive, sha256=hashlib.sha256(archive).hexdigest())
        with pytest.raises(UpdateRefused, match="signature"):
            verify(forged, public_key=pinned, current_version=OLD)

    def test_a_release_signed_with_another_key_is_refused(self, operator):
        pinned, release = operator
        forged = _signed(release.archive, release.version, Ed25519PrivateKey.generate())
        with pytest.raises(UpdateRefused, match="pinned at install time"):
            verify(forged, public_key=pinned, current_version=OLD)

    def test_a_relabelled_version_is_refused(self, operator):
        pinned, release = operator
        with pytest.raises(UpdateRefused, match="signature"):
            verify(replace(release, version="99.0.0"), public_key=pinned, current_version=OLD)

    def test_an_older_or_equal_version_is_refused_even_when_genuine(self, operator):
        pinned, release = operator
        with pytest.raises(UpdateRefused, match="not newer"):
            verify(release, public_key=pinned, current_version=__version__)
        with pytest.raises(UpdateRefused, match="not newer"):
            verify(release, public_key=pinned, current_version="99.0")

    def test_a_signed_file_that_is_not_a_daemon_is_refused(self):
        key = Ed25519PrivateKey.generate()
        with pytest.raises(UpdateRefused, match="not a daemon archive"):
            verify(
                _signed(b"#!/bin/sh\nrm -rf ~\n", "9.0.0", key),
                public_key=_hex_public(key),
                current_version=OLD,
            )


class TestInstall:
    def test_the_swap_keeps_the_mode_and_the_previous_archive(self, operator, tmp_path):
        _, release = operator
        target = tmp_path / "dcp-daemon.pyz"
        target.write_bytes(b"old daemon")
        target.chmod(0o750)
        install_archive(release, target)
        assert target.read_bytes() == release.archive
        assert stat.S_IMODE(target.stat().st_mode) == 0o750
        assert (tmp_path / "dcp-daemon.pyz.previous").read_bytes() == b"old daemon"
        assert sorted(path.name for path in tmp_path.iterdir() if path.name.startswith(".")) == []


def _updater(tmp_path, handler, *, pinned: str, auto_update: bool = True, clock=lambda: 0.0) -> Updater:
    target = tmp_path / "install" / "dcp-daemon.pyz"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(b"old daemon")
    http = httpx.AsyncClient(base_url="http://server", transport=httpx.MockTransport(handler))
    return Updater(
        http,
        public_key=pinned,
        auto_update=auto_update,
        current_version=OLD,
        target=target,
        retry_seconds=60,
        clock=clock,
    )


def _serving(release: Release, body: bytes | None = None):
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/providers/download/update"
        headers = {
            "x-dcp-release-version": release.version,
            "x-dcp-release-sha256": release.sha256,
            "x-dcp-release-signature": release.signature,
        }
        return httpx.Response(200, content=release.archive if body is None else body, headers=headers)

    return handler


class TestUpdater:
    async def test_a_genuine_release_is_installed_with_the_restart_code(self, operator, tmp_path):
        pinned, release = operator
        updater = _updater(tmp_path, _serving(release), pinned=pinned)
        prepared = await updater.prepare()
        assert prepared == release
        assert updater.target.read_bytes() == b"old daemon"  # nothing is written before the daemon stopped
        assert updater.install(prepared) == RESTART_EXIT_CODE
        assert updater.target.read_bytes() == release.archive

    async def test_a_truncated_download_changes_nothing(self, operator, tmp_path, caplog):
        pinned, release = operator
        updater = _updater(tmp_path, _serving(release, body=release.archive[:1000]), pinned=pinned)
        with caplog.at_level(logging.ERROR, "dcp.agent.update"):
            assert await updater.prepare() is None
        assert "update refused: the download is truncated or altered" in caplog.text
        assert sorted(path.name for path in updater.target.parent.iterdir()) == ["dcp-daemon.pyz"]
        assert updater.target.read_bytes() == b"old daemon"

    async def test_a_server_without_updates_is_reported(self, operator, tmp_path, caplog):
        pinned, _ = operator
        refused = httpx.Response(404, json={"error": "This server does not offer daemon updates"})
        updater = _updater(tmp_path, lambda request: refused, pinned=pinned)
        with caplog.at_level(logging.ERROR, "dcp.agent.update"):
            assert await updater.prepare() is None
        assert "the server answered 404: This server does not offer daemon updates" in caplog.text

    async def test_without_a_pinned_key_nothing_is_downloaded(self, tmp_path, caplog):
        def handler(request: httpx.Request) -> httpx.Response:
            raise AssertionError("nothing may be fetched without a pinned key")

        updater = _updater(tmp_path, handler, pinned="")
        with caplog.at_level(logging.WARNING, "dcp.agent.update"):
            assert await updater.prepare() is None
        assert "no release key was pinned" in caplog.text

    async def test_required_updates_always_optional_ones_when_allowed_then_a_pause(self, operator, tmp_path):
        pinned, release = operator
        now = [0.0]
        updater = _updater(
            tmp_path, _serving(release, body=b""), pinned=pinned, auto_update=False, clock=lambda: now[0]
        )
        assert updater.wanted({"needs_update": True})
        assert not updater.wanted({"update_available": True})
        assert _updater(tmp_path, _serving(release), pinned=pinned).wanted({"update_available": True})
        await updater.prepare()  # refused: an empty body
        assert not updater.wanted({"needs_update": True})
        now[0] = 61.0
        assert updater.wanted({"needs_update": True})


async def test_a_busy_daemon_does_not_start_an_update(tmp_path):
    config = AgentConfig(server="http://server", key="dc1-provider-x", home=tmp_path, release_key="ab" * 32)
    daemon = Daemon(config, runtimes={})
    daemon.runner.running["job-1"] = None  # type: ignore[assignment]
    daemon._act_on({"needs_update": True, "approved": True})
    assert daemon._background == set()
    daemon.runner.running.clear()
    daemon._act_on({"needs_update": True, "approved": True})
    assert len(daemon._background) == 1
    await next(iter(daemon._background))  # runs from a package here: logged, nothing installed
    assert daemon.release is None
    await daemon.client.close()


class TestReleaseKeySetting:
    def test_development_generates_one_key_and_keeps_it(self, tmp_path, monkeypatch):
        monkeypatch.setenv("DCP_DATA_DIR", str(tmp_path))
        first = load_settings(announce=False)
        pem = (tmp_path / "release-key.pem").read_bytes()
        assert first.daemon.release_key_file == tmp_path / "release-key.pem"
        assert stat.S_IMODE((tmp_path / "release-key.pem").stat().st_mode) == 0o600
        assert load_settings(announce=False).daemon.release_key_file == first.daemon.release_key_file
        assert (tmp_path / "release-key.pem").read_bytes() == pem

    def test_production_offers_no_updates_without_a_key_and_refuses_a_missing_file(
        self, tmp_path, monkeypatch
    ):
        monkeypatch.setenv("DCP_ENV", "production")
        monkeypatch.setenv("DCP_SECRET_KEY", "k" * 48)
        monkeypatch.setenv("DCP_ADMIN_TOKEN", "t" * 48)
        assert load_settings().daemon.release_key_file is None
        monkeypatch.setenv("DCP_DAEMON__RELEASE_KEY_FILE", str(tmp_path / "missing.pem"))
        with pytest.raises(ConfigError, match="DCP_DAEMON__RELEASE_KEY_FILE"):
            load_settings()
