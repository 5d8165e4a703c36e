"""The renter's side of ``dcp``: login, balance, gpus, run, jobs; the SDK (dc1) is imported to run one."""

from __future__ import annotations

import argparse
import sys

from dcp.renter_cli.parser import COMMANDS, add_commands

__all__ = ["COMMANDS", "add_commands", "run"]


def run(args: argparse.Namespace) -> int:
    """Run a renter command; the server never needs the SDK, so it is imported here, not above."""
    try:
        from dcp.renter_cli.commands import run as run_command
    except ImportError as exc:
        if exc.name != "dc1":
            raise
        print(
            "dcp: error: the renter commands need the Python SDK: pip install -e sdk/python", file=sys.stderr
        )
        return 1
    return run_command(args)
