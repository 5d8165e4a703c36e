"""The installers: the daemon archive runs and comes online, the Linux script installs for real (into a
temporary prefix, with a stand-in for systemctl), and the PowerShell script parses."""

from __future__ import annotations

import asyncio
import io
import json
import os
import shlex
import subprocess
import sys
import time
import zipfile

import httpx
import pytest
import tree_sitter_powershell
from tree_sitter import Language, Parser

from tests.support.factories import register_provider, register_renter

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture
async def http(live):
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        yield client


async def _spawn(command: list[str]) -> subprocess.Popen:
    return await asyncio.to_thread(
        subprocess.Popen, command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _wait_online(http, provider, within=30.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        me = (await http.get("/api/providers/me", headers=provider.provider_headers)).json()["provider"]
        if me["is_online"]:
            return me
        await asyncio.sleep(0.2)
    raise AssertionError("the daemon never came online")


async def test_registration_answers_with_install_commands(http, live):
    answer = (
        await http.post(
            "/api/providers/register",
            json={"name": "n", "email": "n@x.sa", "gpu_model": "RTX 4090", "os": "linux"},
        )
    ).json()
    linux = answer["install_commands"]["linux"]
    assert linux.startswith("curl -fsSL -H 'x-provider-key: dc1-provider-") and linux.endswith("| sh")
    assert f"{live.url}/api/providers/download/setup?os=windows" in answer["install_commands"]["windows"]


async def test_daemon_archive_runs_with_its_server_and_key_written_in(http, live, tmp_path):
    provider = await register_provider(http)
    answer = await http.get("/api/providers/download/daemon", params={"key": provider.key})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(answer.content))
    assert json.loads(archive.read("dcp/agent/embedded.json")) == {"server": live.url, "key": provider.key}
    assert not any(name.startswith("dcp/billing") for name in archive.namelist())  # no server code inside
    path = tmp_path / "dcp-daemon.pyz"
    path.write_bytes(answer.content)
    daemon = await _spawn([sys.executable, str(path), "--home", str(tmp_path / "home"), "--status-port", "0"])
    try:
        await _wait_online(http, provider)
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)


async def test_linux_setup_installs_and_registers_a_service(http, live, tmp_path):
    provider = await register_provider(http)
    script = await http.get(
        "/api/providers/download/setup", headers=provider.provider_headers, params={"os": "linux"}
    )
    assert script.status_code == 200 and script.text.startswith("#!/bin/sh")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "systemctl.calls"
    (bin_dir / "systemctl").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "systemctl").chmod(0o755)
    prefix, units = tmp_path / "prefix", tmp_path / "units"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "DCP_PREFIX": str(prefix),
        "DCP_PYTHON": "/usr/bin/python3",
        "DCP_WITH_LLM": "0",
        "DCP_SYSTEMD_DIR": str(units),
    }
    done = await asyncio.to_thread(
        subprocess.run, ["sh", "-c", script.text], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert oct((prefix / "config.json").stat().st_mode & 0o777) == "0o600"
    assert json.loads((prefix / "config.json").read_text())["key"] == provider.key
    unit = (units / "dcp-provider.service").read_text()
    assert "Restart=always" in unit
    assert calls.read_text().split("\n")[:2] == ["daemon-reload", "enable --now dcp-provider.service"]
    start = next(line for line in unit.splitlines() if line.startswith("ExecStart=")).removeprefix(
        "ExecStart="
    )
    service = await _spawn([*shlex.split(start), "--status-port", "0"])
    try:
        await _wait_online(http, provider)  # what systemd would start comes online
    finally:
        service.terminate()
        service.wait(timeout=30)


async def test_linux_setup_refuses_a_python_older_than_the_daemon_needs(http, tmp_path):
    provider = await register_provider(http)
    script = await http.get(
        "/api/providers/download/setup", headers=provider.provider_headers, params={"os": "linux"}
    )
    old = tmp_path / "python3.10"  # what Ubuntu 22.04 has: the daemon would crash-loop under systemd
    old.write_text('#!/bin/sh\n[ "$1" = -V ] && echo "Python 3.10.12"\nexit 1\n')
    old.chmod(0o755)
    env = {**os.environ, "DCP_PREFIX": str(tmp_path / "prefix"), "DCP_PYTHON": str(old)}
    done = await asyncio.to_thread(
        subprocess.run, ["sh", "-c", script.text], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1 and "Python 3.11 or newer is required" in done.stdout
    assert "is Python 3.10.12" in done.stdout and not (tmp_path / "prefix" / "venv").exists()


async def test_windows_setup_parses_as_powershell(http):
    provider = await register_provider(http)
    script = await http.get(
        "/api/providers/download/setup", headers=provider.provider_headers, params={"os": "windows"}
    )
    assert script.status_code == 200 and provider.key in script.text
    tree = Parser(Language(tree_sitter_powershell.language())).parse(script.text.encode())
    errors = []

    def walk(node):
        if node.type == "ERROR" or node.is_missing:
            errors.append((node.start_point, script.text.encode()[node.start_byte : node.end_byte][:80]))
        for child in node.children:
            walk(child)

    walk(tree.root_node)
    assert errors == []
    assert "Register-ScheduledTask" in script.text


async def test_downloads_need_the_provider_key(http):
    renter = await register_renter(http)
    assert (await http.get("/api/providers/download/daemon")).status_code == 401
    assert (
        await http.get("/api/providers/download/daemon", headers=renter.renter_headers)
    ).status_code == 403
    provider = await register_provider(http)
    bad = await http.get(
        "/api/providers/download/setup", headers=provider.provider_headers, params={"os": "bsd"}
    )
    assert bad.status_code == 400
