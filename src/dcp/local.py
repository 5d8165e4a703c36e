"""``dcp up``: the whole marketplace on one machine: the server on SQLite, a local CPU provider daemon with
the real small model (for jobs and the /v1 pool), and a demo renter with some balance."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import httpx

from dcp.agent.config import AgentConfig
from dcp.agent.daemon import Daemon
from dcp.agent.runtimes.llm import MODEL_ID, assemble_model, model_available
from dcp.app import create_app
from dcp.config import Settings
from dcp.kit.logs import redact_access_log
from dcp.server import Server

DEMO_BALANCE_HALALA = 50_000  # 500 SAR to try things with


async def up(settings: Settings) -> None:
    app = create_app(settings)
    server = Server(app, host=settings.host, port=settings.port, log_level="warning")
    redact_access_log()
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()  # the port is taken, or the server failed: say why
            return
        await asyncio.sleep(0.05)
    base = settings.public_url
    demo = await _demo_accounts(base, settings)
    if model_available():
        print(f"preparing the model {MODEL_ID} (once; about 250 MB)…", flush=True)
        await asyncio.to_thread(assemble_model, settings.data_dir / "provider" / "models")
    config = AgentConfig(
        server=base,
        key=demo["provider_key"],
        home=settings.data_dir / "provider",
        status_port=0,
        heartbeat_seconds=15,
        answer_any_model=True,
        serve_pool=True,  # the README's OpenAI example: /v1 with the same model
    )
    stop = asyncio.Event()
    daemon = asyncio.create_task(Daemon(config).run(stop))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # one Ctrl-C stops the daemon, then the server, cleanly
        loop.add_signal_handler(sig, stop.set)
    _announce(base, settings, demo)
    await stop.wait()
    print("stopping…", flush=True)
    await daemon
    server.should_exit = True
    await serving


async def _demo_accounts(base: str, settings: Settings) -> dict[str, Any]:
    """The local demo provider and renter, created on the first ``dcp up`` and kept in the data folder."""
    path = settings.data_dir / "demo.json"
    if path.exists():
        demo: dict[str, Any] = json.loads(path.read_text())
        return demo
    async with httpx.AsyncClient(
        base_url=base, timeout=30, event_hooks={"response": [_raise_for_status]}
    ) as http:
        provider = (
            await http.post(
                "/api/providers/register",
                json={
                    "name": "Local CPU provider",
                    "email": "provider@demo.dcp.sa",
                    "gpu_model": "CPU",
                    "os": "linux",
                },
            )
        ).json()
        renter = (
            await http.post(
                "/api/renters/register",
                json={"name": "Demo renter", "email": "renter@demo.dcp.sa", "organization": "DCP demo"},
            )
        ).json()
        await http.post(
            f"/api/admin/renters/{renter['renter_id']}/credit",
            headers={"x-admin-token": settings.admin_token, "Idempotency-Key": "demo-starter-balance"},
            json={"amount_halala": DEMO_BALANCE_HALALA, "reason": "dcp up demo balance"},
        )
    demo = {
        "provider_id": provider["provider_id"],
        "provider_key": provider["api_key"],
        "renter_id": renter["renter_id"],
        "renter_key": renter["api_key"],
    }
    _write_private(path, demo)
    return demo


async def _raise_for_status(response: httpx.Response) -> None:
    await response.aread()
    response.raise_for_status()


def _write_private(path: Path, data: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2)


def _announce(base: str, settings: Settings, demo: dict[str, Any]) -> None:
    print(
        f"""
DCP is up.
  API           {base}/api  (and {base}/api/dc1)
  OpenAI API    {base}/v1  (model {MODEL_ID}, your renter key as the API key)
  OpenAPI       {base}/docs/openapi.json
  admin token   {settings.admin_token}
  demo renter   {demo["renter_key"]}  (balance {DEMO_BALANCE_HALALA // 100} SAR)
  provider      #{demo["provider_id"]}, a local CPU daemon serving {MODEL_ID}
                (in this demo it answers every model name with {MODEL_ID})
Keys and tokens are kept in {settings.data_dir}/. Press Ctrl-C to stop.
""",
        flush=True,
    )
