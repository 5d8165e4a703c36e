"""The ``dcp`` command: up, serve, migrate, provider, admin check-ledger, and the renter's commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys

from dcp import renter_cli
from dcp.admin import backup
from dcp.agent.main import add_arguments
from dcp.agent.main import run as run_daemon
from dcp.config import ConfigError, Settings, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcp", description="DCP GPU compute marketplace")
    commands = parser.add_subparsers(dest="command", required=True)

    for name, text in (
        ("up", "the whole marketplace locally: server, a CPU provider, a demo renter"),
        ("serve", "run the API server and web pages"),
    ):
        server = commands.add_parser(name, help=text)
        server.add_argument("--host", default=None, help="address to bind (default 127.0.0.1)")
        server.add_argument("--port", type=int, default=None, help="port (default 8083)")

    commands.add_parser("migrate", help="bring the database schema up to date")

    provider = commands.add_parser("provider", help="the provider daemon")
    provider_commands = provider.add_subparsers(dest="provider_command", required=True)
    add_arguments(provider_commands.add_parser("run", help="run the daemon (connects out to the server)"))
    status = provider_commands.add_parser("status", help="show the local daemon's status")
    status.add_argument("--port", type=int, default=8765)

    admin = commands.add_parser("admin", help="operator tools")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    admin_commands.add_parser("check-ledger", help="verify the ledger's invariants; exit 1 if any fails")
    backup.add_commands(admin_commands)
    renter_cli.add_commands(commands)

    args = parser.parse_args(argv)
    if args.command in renter_cli.COMMANDS:  # before logging is set up: their output is for people
        return renter_cli.run(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "provider":
        return _provider(args)
    overrides = {}
    if args.command in ("serve", "up"):
        overrides = {key: getattr(args, key) for key in ("host", "port") if getattr(args, key) is not None}
    try:
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"dcp: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return _serve(settings)
    if args.command == "up":
        from dcp.local import up as marketplace_up

        _migrate(settings)
        asyncio.run(marketplace_up(settings))
        return 0
    if args.command == "migrate":
        _migrate(settings)
        return 0
    if args.admin_command in backup.COMMANDS:
        code = backup.run(args, settings)
        if code or args.admin_command == "backup":
            return code  # a restored database goes on to the ledger check below
    return asyncio.run(_check_ledger(settings))


def _migrate(settings: Settings) -> None:
    from dcp.db.migrate import upgrade

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)


def _serve(settings: Settings) -> int:
    from dcp.app import create_app
    from dcp.kit.heap import settle_for_serving
    from dcp.kit.logs import access_log_after_responses, redact_access_log
    from dcp.server import Server

    _migrate(settings)
    print(f"DCP serving on {settings.public_url}  (API under /api and /api/dc1)")
    # No per-message deflate on the provider links: their frames are small JSON, and compressing and
    # inflating each one cost more time on a relayed /v1 request than its bytes take on the wire.
    server = Server(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level="info",
        ws_per_message_deflate=False,
    )
    redact_access_log()
    access_log_after_responses()
    settle_for_serving()
    server.run()
    return 0


async def _check_ledger(settings: Settings) -> int:
    from dcp.billing.invariants import all_problems
    from dcp.db.engine import open_database

    db = open_database(settings.database_url)
    async with db.reader() as session:
        problems = await all_problems(session)
    await db.dispose()
    for problem in problems:
        print(f"ledger: {problem}", file=sys.stderr)
    print("ledger: ok" if not problems else f"ledger: {len(problems)} problem(s)")
    return 1 if problems else 0


def _provider(args: argparse.Namespace) -> int:
    if args.provider_command == "status":
        return _provider_status(args.port)
    return run_daemon(args)


def _provider_status(port: int) -> int:
    import httpx

    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/status", timeout=5)
    except httpx.HTTPError:
        print(f"no daemon answers on 127.0.0.1:{port}", file=sys.stderr)
        return 1
    print(json.dumps(answer.json(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
