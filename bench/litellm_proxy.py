"""LiteLLM's proxy as the comparison gateway: its own virtualenv (never the project's), a config that points
one model at the fake upstream, and the proxy served by one worker pinned to the server core."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.processes import SERVER_CORE, free_port, ready, start, stop

# 1.107.0 was a compromised release. 1.108 and later need litellm-proxy-extras / litellm-proxy builds that
# this machine's package index does not carry, so 1.106.12 is the newest `litellm[proxy]` that installs.
VERSION = "1.106.12"
VENV = Path(__file__).parent / ".venv-litellm"
MASTER_KEY = "sk-bench-" + "m" * 32
_INSTALL_SECONDS = 900


class Unavailable(RuntimeError):
    """LiteLLM could not be installed or started here; the rest of the benchmark still runs."""


@dataclass(frozen=True)
class Proxy:
    port: int
    pid: int
    headers: dict[str, str]


async def ensure_installed() -> Path:
    """The ``litellm`` command of the benchmark's virtualenv, installing the pinned version if needed."""
    python, command = VENV / "bin" / "python", VENV / "bin" / "litellm"
    if python.exists() and command.exists() and await _installed_version(python) == VERSION:
        return command
    print(f"installing litellm[proxy]=={VERSION} into {VENV} (once) ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(VENV)],
        [str(python), "-m", "pip", "install", "--quiet", f"litellm[proxy]=={VERSION}"],
    ]
    for step in steps:
        try:
            done = await asyncio.to_thread(
                subprocess.run, step, capture_output=True, text=True, timeout=_INSTALL_SECONDS, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise Unavailable(f"{' '.join(step[-3:])} took over {_INSTALL_SECONDS} s") from exc
        if done.returncode != 0:
            output = (done.stderr or done.stdout).splitlines()
            errors = [line for line in output if line.startswith("ERROR")][-1:] or output[-5:]
            raise Unavailable(f"{' '.join(step[-3:])} failed: {' '.join(errors)[:600]}")
    if not command.exists():
        raise Unavailable(f"litellm {VERSION} installed without its `litellm` command")
    return command


async def _installed_version(python: Path) -> str:
    probe = "import importlib.metadata as m; print(m.version('litellm'))"
    done = await asyncio.to_thread(
        subprocess.run, [str(python), "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    return done.stdout.strip()


def _write_config(folder: Path, *, model: str, upstream_port: int) -> Path:
    """One OpenAI-compatible model on the fake upstream; a master key and no database, as in a lean setup."""
    config = {
        "model_list": [
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"openai/{model}",
                    "api_base": f"http://127.0.0.1:{upstream_port}/v1",
                    "api_key": "fake-upstream-key",
                },
            }
        ],
        "general_settings": {"master_key": MASTER_KEY},
        "litellm_settings": {"telemetry": False},
    }
    path = folder / "litellm.yaml"
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def _command(litellm: Path, *, config: Path, port: int) -> list[str]:
    return [
        str(litellm),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]


def _environment(base: dict[str, str]) -> dict[str, str]:
    """Offline and quiet: the model-cost map from the package itself, no telemetry, errors-only logging."""
    return {
        **base,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_TELEMETRY": "False",
        "LITELLM_LOG": "ERROR",
        "DISABLE_SCHEMA_UPDATE": "True",
    }


@asynccontextmanager
async def running(folder: Path, *, model: str, upstream_port: int) -> AsyncIterator[Proxy]:
    """The proxy serving ``model`` from the fake upstream, pinned to the server core; Unavailable if it
    cannot be installed or does not come up."""
    litellm = await ensure_installed()
    port = free_port()
    config = _write_config(folder, model=model, upstream_port=upstream_port)
    log = folder / "litellm.log"
    proxy = await start(
        _command(litellm, config=config, port=port),
        core=SERVER_CORE,
        env=_environment(dict(os.environ)),
        cwd=str(folder),
        log=log,
    )
    try:
        try:
            await ready(f"http://127.0.0.1:{port}/health/liveliness", process=proxy, seconds=180)
        except RuntimeError as exc:
            tail = (await asyncio.to_thread(log.read_text, errors="replace"))[-1500:]
            raise Unavailable(f"{exc}; its log ends with:\n{tail}") from exc
        yield Proxy(port, proxy.pid, {"authorization": f"Bearer {MASTER_KEY}"})
    finally:
        stop(proxy)
