"""What each renter command does, through the dc1 SDK; every API error becomes a message and an exit code."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import asdict

import dc1

from dcp.renter_cli import jobs, session
from dcp.renter_cli.credentials import NotLoggedIn
from dcp.renter_cli.jobs import JOB_TYPES
from dcp.renter_cli.session import EXIT_USAGE, client_for
from dcp.renter_cli.show import Console, sar

EXIT_ERROR, EXIT_JOB_FAILED, EXIT_TIMEOUT, EXIT_INTERRUPTED = 1, 3, 4, 130


def run(args: argparse.Namespace) -> int:
    console = Console(json=bool(getattr(args, "json", False)))
    try:
        return HANDLERS[args.command](args, console)
    except NotLoggedIn as exc:
        console.fail(str(exc))
        return EXIT_USAGE
    except dc1.TimeoutError as exc:
        console.fail(exc.message)
        return EXIT_TIMEOUT
    except dc1.JobFailedError as exc:
        refund = f" ({sar(exc.refunded_halala)} refunded)" if exc.refunded_halala else ""
        if console.json:  # a script reading stdout learns the outcome there too
            body = exc.body if isinstance(exc.body, dict) else {}
            console.data({"status": body.get("status", "failed"), "error": exc.message, **body})
        console.fail(f"the job did not complete: {exc.message}{refund}")
        return EXIT_JOB_FAILED
    except dc1.DC1Error as exc:
        console.fail(_explain(exc))
        return EXIT_ERROR
    except OSError as exc:
        console.fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _explain(error: dc1.DC1Error) -> str:
    if isinstance(error, dc1.AuthenticationError):
        return f"{error.message} (log in again with `dcp login`)"
    if isinstance(error, dc1.InsufficientBalanceError):
        need, have = sar(error.required_halala), sar(error.available_halala)
        return f"insufficient balance: the job needs {need} held, you have {have} available"
    return error.message


def balance(args: argparse.Namespace, console: Console) -> int:
    with client_for(args) as client:
        found = client.balance()
    if console.json:
        held_sar = dc1.sar(found.held_halala)
        console.data({**asdict(found), "balance_sar": str(found.balance_sar), "held_sar": str(held_sar)})
        return 0
    console.line(f"balance  {sar(found.balance_halala)}")
    console.line(f"held     {sar(found.held_halala)}  (for jobs still running)")
    return 0


def gpus(args: argparse.Namespace, console: Console) -> int:
    with client_for(args) as client:
        found = client.providers.list(
            live_only=not args.all, min_vram_gb=args.min_vram, gpu_model=args.gpu_model
        )
    if console.json:
        console.data([provider.raw for provider in found])
        return 0
    if not found:
        console.note("No GPUs match right now.")
        return 0
    rows = [
        (
            p.id,
            p.name,
            p.gpu_model,
            f"{p.vram_gb} GB",
            p.status if p.is_live else f"{p.status} (not live)",
            *(sar(p.price_per_minute_halala.get(job_type)) for job_type in JOB_TYPES.values()),
        )
        for p in found
    ]
    console.table(["ID", "NAME", "GPU", "VRAM", "STATUS", "LLM/MIN", "IMAGE/MIN", "SCRIPT/MIN"], rows)
    return 0


HANDLERS: dict[str, Callable[[argparse.Namespace, Console], int]] = {
    "login": session.login,
    "logout": session.logout,
    "balance": balance,
    "gpus": gpus,
    "run": jobs.run_job,
    "jobs": jobs.jobs,
    "job": jobs.show,
}
