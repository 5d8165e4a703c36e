"""Who the commands act as: ``dcp login`` and ``logout``, and the SDK client the other commands use."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

import dc1

from dcp.renter_cli import credentials
from dcp.renter_cli.credentials import Credentials
from dcp.renter_cli.show import Console, sar

EXIT_USAGE = 2


def client_for(args: argparse.Namespace) -> dc1.Client:
    found = credentials.resolve(getattr(args, "api_key", None), getattr(args, "base_url", None))
    return dc1.Client(found.api_key, base_url=found.base_url)


def login(args: argparse.Namespace, console: Console) -> int:
    saved = credentials.stored()
    interactive = sys.stdin.isatty()
    default_url = os.environ.get(credentials.URL_VARIABLE) or (
        saved.base_url if saved else credentials.DEFAULT_BASE_URL
    )
    base_url = args.base_url or (_ask(f"DCP server [{default_url}]: ") if interactive else "") or default_url
    api_key = args.api_key or (getpass.getpass("Renter API key: ") if interactive else sys.stdin.readline())
    api_key = api_key.strip()
    if not api_key:
        console.fail("no key given: pass --api-key, or type it when asked")
        return EXIT_USAGE
    with dc1.Client(api_key, base_url=base_url) as client:
        profile = client.me()
        if "renter" not in profile:
            console.fail("that is not a renter key; `dcp login` takes the key you got when you registered")
            return EXIT_USAGE
        balance = client.balance()
    path = credentials.save(Credentials(api_key, client.base_url))
    renter = profile["renter"]
    console.line(f"Logged in to {client.base_url} as {renter.get('name')} <{renter.get('email')}>.")
    console.line(f"Balance {sar(balance.balance_halala)}. Key saved in {path} (readable by you only).")
    return 0


def _ask(prompt: str) -> str:
    return input(prompt).strip()


def logout(args: argparse.Namespace, console: Console) -> int:
    console.line(f"Removed {credentials.path()}" if credentials.forget() else "Not logged in")
    return 0
