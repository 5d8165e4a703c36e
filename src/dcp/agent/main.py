"""Start the daemon from the command line (``dcp provider run`` and the downloaded ``dcp-daemon.pyz``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Coroutine
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from dcp.agent import config as agent_config

T = TypeVar("T")


def embedded_defaults() -> dict[str, Any]:
    """The server URL and key that the download endpoint wrote into a daemon archive, if any."""
    try:
        text = resources.files("dcp.agent").joinpath("embedded.json").read_text()
    except (FileNotFoundError, OSError):
        return {}
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help="the DCP server URL")
    parser.add_argument("--key", help="this provider's API key")
    parser.add_argument("--config", type=Path, default=None, help="config file (default: HOME/config.json)")
    parser.add_argument("--home", type=Path, default=None, help="the daemon's state and model folder")
    parser.add_argument("--slots", type=int, default=None, help="jobs to run at once")
    parser.add_argument(
        "--status-port", type=int, default=None, help="loopback status port (0: any free port)"
    )
    parser.add_argument(
        "--serve-pool",
        action="store_true",
        default=None,
        help="also serve the /v1 OpenAI-compatible pool with the local engine",
    )


def run(args: argparse.Namespace) -> int:
    from dcp.agent.daemon import Daemon
    from dcp.agent.home_lock import CannotStart

    home = args.home or agent_config.DEFAULT_HOME
    embedded = embedded_defaults()
    try:
        config = agent_config.load(
            args.config or home / "config.json",
            server=args.server or embedded.get("server"),
            key=args.key or embedded.get("key"),
            home=home,
            slots=args.slots,
            status_port=args.status_port,
            serve_pool=args.serve_pool,
        )
    except ValueError as exc:
        print(f"dcp daemon: {exc}", file=sys.stderr)
        return 2
    try:
        return run_event_loop(Daemon(config).run())
    except CannotStart as exc:
        print(f"dcp daemon: {exc}", file=sys.stderr)
        return 2


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run the daemon's event loop: uvloop where it is installed (Linux, with uvicorn[standard], as the server
    runs), asyncio's own elsewhere (Windows). The gateway bench's providers run their links through it too."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcp-daemon", description="DCP provider daemon")
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return run(parser.parse_args(argv))
