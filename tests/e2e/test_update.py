"""Signed self-update, through HTTP and real processes: the release endpoints, a real daemon that is told to
update, installs the signed release and exits to be restarted on it, and one that refuses a release signed
with a key other than the one it pinned."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from dcp import __version__
from dcp.agent.update import RESTART_EXIT_CODE, Release, verify
from dcp.config import write_release_key
from tests.process.test_serve import _start, _stop, _wait_ready
from tests.support.factories import register_provider, register_renter
from tests.support.postgres import free_port

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
OLD = "0.0.1"


def _release_of(answer: httpx.Response) -> Release:
    return Release(
        answer.headers["x-dcp-release-version"],
        answer.content,
        answer.headers["x-dcp-release-sha256"],
        answer.headers["x-dcp-release-signature"],
    )


class TestEndpoints:
    async def test_the_release_is_signed_for_the_pinned_key_and_carries_no_key(
        self, client, settings, tmp_path
    ):
        settings.daemon.release_key_file = tmp_path / "release-key.pem"
        write_release_key(settings.daemon.release_key_file)
        provider = await register_provider(client)
        pinned = (await client.get("/api/providers/download/release-key")).json()
        assert pinned["algorithm"] == "ed25519" and pinned["version"] == __version__
        answer = await client.get("/api/providers/download/update", headers=provider.provider_headers)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
        verify(_release_of(answer), public_key=pinned["public_key"], current_version=OLD)
        assert "dcp/agent/embedded.json" not in zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
        for os_name in ("linux", "windows"):
            script = await client.get(
                "/api/providers/download/setup", headers=provider.provider_headers, params={"os": os_name}
            )
            assert f"'{pinned['public_key']}'" in script.text

    async def test_the_update_needs_a_provider_key(self, client, settings, tmp_path):
        settings.daemon.release_key_file = tmp_path / "release-key.pem"
        write_release_key(settings.daemon.release_key_file)
        renter = await register_renter(client)
        assert (await client.get("/api/providers/download/update")).status_code == 401
        assert (
            await client.get("/api/providers/download/update", headers=renter.renter_headers)
        ).status_code == 403

    async def test_without_a_release_key_no_update_is_offered(self, client):
        provider = await register_provider(client)
        for path, headers in (("update", provider.provider_headers), ("release-key", {})):
            answer = await client.get(f"/api/providers/download/{path}", headers=headers)
            assert answer.status_code == 404
            assert "does not offer daemon updates" in answer.json()["error"]
        script = await client.get("/api/providers/download/setup", headers=provider.provider_headers)
        assert "DCP_RELEASE_KEY=''" in script.text


class Install:
    """A daemon installed the way the Linux installer does it: an archive, a config, and the start command."""

    def __init__(self, base: str, key: str, pinned: str, home: Path) -> None:
        self.base, self.key, self.home = base, key, home
        self.archive = home / "dcp-daemon.pyz"
        self.log = home / "daemon.log"
        home.mkdir()
        config = {"server": base, "key": key, "home": str(home), "release_key": pinned}
        config |= {"heartbeat_seconds": 0.5, "status_port": 0}
        (home / "config.json").write_text(json.dumps(config))

    def write_old_daemon(self) -> bytes:
        """The server's daemon archive, relabelled as an older version."""
        answer = httpx.get(f"{self.base}/api/providers/download/daemon", headers={"x-provider-key": self.key})
        source, buffer = zipfile.ZipFile(io.BytesIO(answer.content)), io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as old:
            for name in source.namelist():
                relabelled = f'__version__ = "{OLD}"\n'.encode() if name == "dcp/__init__.py" else None
                old.writestr(name, relabelled or source.read(name))
        self.archive.write_bytes(buffer.getvalue())
        return buffer.getvalue()

    def start(self) -> subprocess.Popen:
        with self.log.open("a") as log:  # what ExecStart runs
            command = [sys.executable, str(self.archive), "--home", str(self.home)]
            return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)

    def me(self) -> dict:
        answer = httpx.get(f"{self.base}/api/providers/me", headers={"x-provider-key": self.key})
        return answer.json()["provider"]


def _register(base: str) -> str:
    body = {"name": "updater", "email": f"updater{free_port()}@x.sa", "gpu_model": "CPU", "os": "linux"}
    return httpx.post(f"{base}/api/providers/register", json=body).json()["api_key"]


def _until(what: str, check, within: float = 60.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


def _stop_daemon(daemon: subprocess.Popen) -> None:
    if daemon.poll() is None:
        daemon.terminate()
        daemon.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    """A server process started as ``dcp serve``; yields a function that starts it with extra settings."""
    started = []

    def start(**env: str) -> str:
        port = free_port()
        process = _start(tmp_path, port, env)
        started.append(process)
        _wait_ready(f"http://127.0.0.1:{port}", process)
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        output = _stop(process)
        assert "Traceback" not in output, output


def _public_hex(private_pem: Path) -> str:
    key = serialization.load_pem_private_key(private_pem.read_bytes(), password=None)
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _pinned(base: str) -> str:
    return httpx.get(f"{base}/api/providers/download/release-key").json()["public_key"]


def test_a_daemon_told_to_update_installs_the_signed_release_and_restarts_on_it(server, tmp_path):
    base = server()  # development mode: the release key is generated into the data dir
    key = _register(base)
    install = Install(base, key, _pinned(base), tmp_path / "provider")
    old = install.write_old_daemon()
    daemon = install.start()
    try:
        code = daemon.wait(120)
    finally:
        _stop_daemon(daemon)
    log = install.log.read_text()
    assert code == RESTART_EXIT_CODE, log
    assert f"installed release {__version__} into {install.archive}" in log
    served = httpx.get(f"{base}/api/providers/download/update", headers={"x-provider-key": key})
    assert install.archive.read_bytes() == served.content
    assert (install.home / "dcp-daemon.pyz.previous").read_bytes() == old
    restarted = install.start()  # what systemd's Restart=always does
    try:
        me = _until(
            "the new daemon reports its version",
            lambda: (m := install.me())["daemon_version"] == __version__ and m,
        )
        assert me["is_online"] and restarted.poll() is None
    finally:
        _stop_daemon(restarted)
    assert restarted.returncode == 0  # up to date: it ran until stopped, no second update


def test_a_daemon_refuses_a_release_signed_with_another_key(server, tmp_path):
    operator, imposter = tmp_path / "operator.pem", tmp_path / "imposter.pem"
    write_release_key(operator)
    write_release_key(imposter)
    base = server(DCP_DAEMON__RELEASE_KEY_FILE=str(imposter))
    install = Install(base, _register(base), _public_hex(operator), tmp_path / "provider")
    old = install.write_old_daemon()
    daemon = install.start()
    try:
        _until(
            "the refusal is logged",
            lambda: "update refused: the signature does not match" in install.log.read_text(),
        )
        seen = install.me()["last_heartbeat"]
        _until("a heartbeat after the refusal", lambda: install.me()["last_heartbeat"] != seen)
        assert daemon.poll() is None
    finally:
        _stop_daemon(daemon)
    assert daemon.returncode == 0
    assert install.archive.read_bytes() == old
    assert sorted(path.name for path in install.home.glob("*dcp-daemon*")) == ["dcp-daemon.pyz"]
