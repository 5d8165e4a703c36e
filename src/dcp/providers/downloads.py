"""The installers: the daemon as one runnable archive, the Linux and Windows setup scripts, and the signed
daemon release that installed daemons update to."""

from __future__ import annotations

import re
from importlib import resources
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from dcp.auth import CurrentProvider, presented_key
from dcp.deps import SettingsDep
from dcp.kit.errors import BadRequest, error_responses
from dcp.providers import releases

router = APIRouter(prefix="/providers/download", tags=["providers"])
_SAFE = re.compile(r"^[A-Za-z0-9_.:/\-]+$")
_SCRIPTS = {
    "linux": ("setup.sh", "text/x-shellscript", "dcp-setup.sh"),
    "windows": ("setup.ps1", "text/plain", "dcp-setup.ps1"),
}


def setup_script(os_name: str, *, server: str, key: str, release_key: str = "") -> str:
    """The installer with the server, the key and the release key to pin (hex, or empty) written in."""
    if not (_SAFE.match(server) and _SAFE.match(key)):
        raise BadRequest("The server URL or key holds characters an installer cannot carry")
    template = resources.files("dcp.providers").joinpath("installers", _SCRIPTS[os_name][0]).read_text()
    return (
        template.replace("__DCP_SERVER__", server)
        .replace("__DCP_KEY__", key)
        .replace("__DCP_RELEASE_KEY__", release_key)
    )


@router.get(
    "/daemon",
    responses={**error_responses(401, 403), 200: {"content": {"application/zip": {}}}},
    summary="The daemon as one runnable Python archive, with this server and key written in",
)
async def download_daemon(provider: CurrentProvider, request: Request, settings: SettingsDep) -> Response:
    archive = releases.daemon_archive(
        {"server": settings.public_url, "key": await presented_key(request) or ""}
    )
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
    script = setup_script(
        os,
        server=settings.public_url,
        key=await presented_key(request) or "",
        release_key=releases.pinned_key_or_empty(settings),
    )
    _, media_type, filename = _SCRIPTS[os]
    return Response(
        script, media_type=media_type, headers={"content-disposition": f'attachment; filename="{filename}"'}
    )


_RELEASE_HEADERS: dict[str, Any] = {
    "x-dcp-release-version": {"description": "The daemon version inside", "schema": {"type": "string"}},
    "x-dcp-release-sha256": {"description": "SHA-256 of the body, hex", "schema": {"type": "string"}},
    "x-dcp-release-signature": {
        "description": "Ed25519 signature (hex) by the release key over "
        '"dcp-daemon-release-v1\\n" + version + "\\n" + sha256',
        "schema": {"type": "string"},
    },
}


@router.get(
    "/update",
    responses={
        **error_responses(401, 403, 404),
        200: {"content": {"application/zip": {}}, "headers": _RELEASE_HEADERS},
    },
    summary="The signed daemon release that installed daemons update to (no key inside)",
)
async def download_update(provider: CurrentProvider, settings: SettingsDep) -> Response:
    release = releases.current_release(settings)
    return Response(
        release.archive,
        media_type="application/zip",
        headers={
            **release.headers,
            "content-disposition": f'attachment; filename="dcp-daemon-{release.version}.pyz"',
        },
    )


@router.get(
    "/release-key",
    responses=error_responses(404),
    summary="The Ed25519 public key that signs daemon releases (installers pin it)",
)
async def release_key(settings: SettingsDep) -> releases.ReleaseKey:
    return releases.public_key(settings)


def install_command(os_name: str, *, server: str, key: str) -> str:
    """The one line a provider pastes into a terminal."""
    url = f"{server}/api/providers/download/setup?os={os_name}"
    if os_name == "windows":
        return (
            f"iex (Invoke-WebRequest -UseBasicParsing -Headers @{{'x-provider-key'='{key}'}} '{url}').Content"
        )
    return f"curl -fsSL -H 'x-provider-key: {key}' '{url}' | sh"
