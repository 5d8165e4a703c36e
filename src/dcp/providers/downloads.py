"""The installers: the daemon as one runnable archive, and the Linux and Windows setup scripts."""

from __future__ import annotations

import io
import json
import re
import zipfile
from importlib import resources
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dcp.auth import CurrentProvider, presented_key
from dcp.deps import SettingsDep
from dcp.kit.errors import BadRequest, error_responses

router = APIRouter(prefix="/providers/download", tags=["providers"])
_PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# What the daemon imports: its own package and the two pure helpers it shares with the server.
_DAEMON_FILES = ("__init__.py", "agent", "kit/__init__.py", "kit/keys.py", "kit/signing.py")
_SAFE = re.compile(r"^[A-Za-z0-9_.:/\-]+$")
_SCRIPTS = {
    "linux": ("setup.sh", "text/x-shellscript", "dcp-setup.sh"),
    "windows": ("setup.ps1", "text/plain", "dcp-setup.ps1"),
}


def daemon_archive(*, server: str, key: str) -> bytes:
    """A zipapp of the daemon with the server and key written in (``python dcp-daemon.pyz`` runs it)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__main__.py", "import sys\nfrom dcp.agent.main import main\nsys.exit(main())\n")
        for name in _DAEMON_FILES:
            for path in _files(_PACKAGE_ROOT / name):
                archive.write(path, f"dcp/{path.relative_to(_PACKAGE_ROOT).as_posix()}")
        archive.writestr("dcp/agent/embedded.json", json.dumps({"server": server, "key": key}))
    return buffer.getvalue()


def _files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.py") if "__pycache__" not in p.parts)


def setup_script(os_name: str, *, server: str, key: str) -> str:
    if not (_SAFE.match(server) and _SAFE.match(key)):
        raise BadRequest("The server URL or key holds characters an installer cannot carry")
    template = resources.files("dcp.providers").joinpath("installers", _SCRIPTS[os_name][0]).read_text()
    return template.replace("__DCP_SERVER__", server).replace("__DCP_KEY__", key)


@router.get(
    "/daemon",
    responses={**error_responses(401, 403), 200: {"content": {"application/zip": {}}}},
    summary="The daemon as one runnable Python archive, with this server and key written in",
)
async def download_daemon(provider: CurrentProvider, request: Request, settings: SettingsDep) -> Response:
    archive = daemon_archive(server=settings.public_url, key=await presented_key(request) or "")
    return Response(
        archive,
        media_type="application/zip",
        headers={"content-disposition": 'attachment; filename="dcp-daemon.pyz"'},
    )


@router.get(
    "/setup",
    responses={**error_responses(400, 401, 403), 200: {"content": {"text/plain": {}}}},
    summary="The installer: a shell script for Linux or a PowerShell script for Windows",
)
async def download_setup(
    provider: CurrentProvider,
    request: Request,
    settings: SettingsDep,
    os: Annotated[Literal["linux", "windows"], Query(description="linux or windows")] = "linux",
) -> Response:
    script = setup_script(os, server=settings.public_url, key=await presented_key(request) or "")
    _, media_type, filename = _SCRIPTS[os]
    return Response(
        script, media_type=media_type, headers={"content-disposition": f'attachment; filename="{filename}"'}
    )


def install_command(os_name: str, *, server: str, key: str) -> str:
    """The one line a provider pastes into a terminal."""
    url = f"{server}/api/providers/download/setup?os={os_name}"
    if os_name == "windows":
        return (
            f"iex (Invoke-WebRequest -UseBasicParsing -Headers @{{'x-provider-key'='{key}'}} '{url}').Content"
        )
    return f"curl -fsSL -H 'x-provider-key: {key}' '{url}' | sh"
