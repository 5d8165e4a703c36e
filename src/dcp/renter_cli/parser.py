"""The renter's subcommands of ``dcp`` and their options (argparse only: no SDK import here)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from dcp.renter_cli.credentials import KEY_VARIABLE, URL_VARIABLE

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]  # what add_subparsers() returns

COMMANDS = frozenset({"login", "logout", "balance", "gpus", "run", "jobs", "job"})


def add_commands(commands: Subcommands) -> None:
    """Add login, logout, balance, gpus, run, jobs and job to the ``dcp`` parser."""
    login = _leaf(commands, "login", "store your renter key (verified first) for the other commands")
    login.add_argument("--api-key", help="the renter key (asked for when not given)")
    login.add_argument("--base-url", help="the DCP server (asked for when not given)")
    commands.add_parser("logout", help="forget the stored key")
    _leaf(commands, "balance", "your balance and what is held for running jobs", common=True)
    gpus = _leaf(commands, "gpus", "the GPUs you can rent now", common=True)
    gpus.add_argument("--all", action="store_true", help="include providers that are not live")
    gpus.add_argument("--min-vram", type=int, metavar="GB", help="at least this much GPU memory")
    gpus.add_argument("--gpu-model", help="e.g. 'RTX 4090'")
    _add_run(commands)
    _add_jobs(commands)
    job = _leaf(commands, "job", "one job: its state, cost and result (same as `dcp jobs show`)", common=True)
    job.add_argument("job_id")


def _leaf(
    commands: Subcommands, name: str, text: str, *, common: bool = False, **kw: Any
) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=text, description=text, **kw)
    if common:
        _common(parser)
    return parser


def _common(parser: argparse.ArgumentParser, *, nested: bool = False) -> None:
    # A nested parser must not reset what its parent parsed, so its defaults are left out of the namespace.
    default = argparse.SUPPRESS if nested else None
    parser.add_argument(
        "--api-key", default=default, help=f"a renter key (default: ${KEY_VARIABLE}, then login)"
    )
    parser.add_argument(
        "--base-url", default=default, help=f"the DCP server (default: ${URL_VARIABLE}, then login)"
    )
    flag = argparse.SUPPRESS if nested else False
    parser.add_argument("--json", action="store_true", default=flag, help="print JSON, for scripts")


def _add_run(commands: Subcommands) -> None:
    run = commands.add_parser("run", help="run a job and wait for its result", description="Run a job.")
    kinds = run.add_subparsers(dest="kind", required=True, metavar="{llm,image,script}")
    llm = kinds.add_parser("llm", help="generate text; tokens are printed as they come")
    llm.add_argument("prompt")
    llm.add_argument("--model", help="e.g. gemma3-270m (default: the server's)")
    llm.add_argument("--max-tokens", type=int)
    llm.add_argument("--temperature", type=float)
    image = kinds.add_parser("image", help="generate an image and save it")
    image.add_argument("prompt")
    image.add_argument("-o", "--output", help="the file to write (default: JOB_ID.png)")
    image.add_argument("--model")
    for name in ("width", "height", "steps", "seed"):
        image.add_argument(f"--{name}", type=int)
    image.add_argument("--negative-prompt")
    script = kinds.add_parser("script", help="run a Python script in a container on a GPU")
    script.add_argument("file", help="the script (- reads standard input)")
    script.add_argument("--image", help="container image (default: the provider's general worker)")
    script.add_argument("--network", action="store_true", help="ask for network access")
    for kind in (llm, image, script):
        _run_options(kind)


def _run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--provider", type=int, metavar="ID", help="run on this provider (default: placed)")
    parser.add_argument("--duration", type=int, default=5, metavar="MIN", help="minutes to hold (default 5)")
    parser.add_argument(
        "--wait", action=argparse.BooleanOptionalAction, default=True, help="wait for the result (default)"
    )
    parser.add_argument(
        "--timeout", type=float, default=600.0, metavar="S", help="longest wait (default 600)"
    )
    _common(parser)


def _add_jobs(commands: Subcommands) -> None:
    jobs = _leaf(commands, "jobs", "your jobs, newest first; `show` or `cancel` one", common=True)
    jobs.add_argument(
        "--status", choices=["pending", "assigned", "running", "completed", "failed", "cancelled"]
    )
    jobs.add_argument(
        "--type",
        dest="job_type",
        choices=["llm_inference", "image_generation", "vllm_serve", "custom_container"],
    )
    jobs.add_argument("--limit", type=_at_least_one, default=20, help="at most this many (default 20)")
    actions = jobs.add_subparsers(dest="action", metavar="{show,cancel}")
    for action, text in (("show", "one job: its state, cost and result"), ("cancel", "cancel a job")):
        parser = actions.add_parser(action, help=text, description=text)
        parser.add_argument("job_id")
        _common(parser, nested=True)


def _at_least_one(text: str) -> int:
    """A count of 1 or more (``--limit -1`` reached islice, which refuses it, and printed a traceback)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of 1 or more")
    return value
