"""``dcp run llm|image|script`` (submit, follow live, print or save the result), ``dcp jobs``, ``dcp job``."""

from __future__ import annotations

import argparse
import itertools
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import dc1

from dcp.renter_cli.session import client_for
from dcp.renter_cli.show import Console, LiveOutput, sar

JOB_TYPES: dict[str, dc1.JobType] = {
    "llm": "llm_inference",
    "image": "image_generation",
    "script": "custom_container",
}


def run_job(args: argparse.Namespace, console: Console) -> int:
    params: Any = _params(args)  # built from the options given, per kind: the server checks the keys
    with client_for(args) as client:
        job = client.jobs.submit(
            JOB_TYPES[args.kind], params, duration_minutes=args.duration, provider_id=args.provider
        )
        console.note(f"{job.job_id} submitted; {sar(job.cost_halala)} held until it ends")
        if not args.wait:
            _print_submitted(console, job)
            return 0
        live = LiveOutput(console, logs_are_output=args.kind == "script")
        try:
            output = client.jobs.wait(job.job_id, timeout=args.timeout, on_event=live)
        except (dc1.TimeoutError, KeyboardInterrupt):
            console.note(
                f"{job.job_id} is still running: `dcp job {job.job_id}`, `dcp jobs cancel {job.job_id}`"
            )
            if console.json:  # stdout still says what became of the job, as for one that failed
                console.data(job.raw)
            raise
    if args.kind == "image":
        return _save_image(args, console, output)
    final = output.text if args.kind == "llm" else _script_output(output)
    if console.json:
        console.data(asdict(output))
    live.finish(final)
    console.note(f"{job.job_id} {output.status}; cost {sar(output.actual_cost_halala)}")
    return 0


def _params(args: argparse.Namespace) -> dict[str, Any]:
    if args.kind == "script":
        script = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        return _present(script=script, image_override=args.image, network=args.network or None)
    shared = _present(prompt=args.prompt, model=args.model)
    if args.kind == "llm":
        return {**shared, **_present(max_tokens=args.max_tokens, temperature=args.temperature)}
    sizes = _present(width=args.width, height=args.height, steps=args.steps, seed=args.seed)
    return {**shared, **sizes, **_present(negative_prompt=args.negative_prompt)}


def _present(**values: Any) -> dict[str, Any]:
    """Only the options given: the server fills in its defaults for the rest."""
    return {key: value for key, value in values.items() if value is not None}


def _print_submitted(console: Console, job: dc1.Job) -> None:
    if console.json:
        console.data(job.raw)
    else:
        console.line(job.job_id)


def _script_output(output: dc1.Output) -> str:
    # The live lines arrive stripped of trailing spaces; compare like with like.
    text = str(output.result.get("output") or "")
    return "".join(line.rstrip() + "\n" for line in text.splitlines())


def _save_image(args: argparse.Namespace, console: Console, output: dc1.Output) -> int:
    path = output.save_image(args.output or f"{output.job_id}.png")
    if console.json:
        result = {key: value for key, value in output.result.items() if key != "image_base64"}
        console.data({**asdict(output), "result": result, "image_file": str(path)})
    else:
        console.line(str(path))
    console.note(
        f"{output.job_id} {output.status}; image saved to {path}; cost {sar(output.actual_cost_halala)}"
    )
    return 0


def jobs(args: argparse.Namespace, console: Console) -> int:
    if args.action == "show":
        return show(args, console)
    if args.action == "cancel":
        return cancel(args, console)
    with client_for(args) as client:
        found = list(
            itertools.islice(client.jobs.history(status=args.status, job_type=args.job_type), args.limit)
        )
    if console.json:
        console.data([job.raw for job in found])
        return 0
    if not found:
        console.note('No jobs yet: try `dcp run llm "Hello"`.')
        return 0
    rows = [(j.job_id, j.job_type, j.status, j.raw.get("submitted_at") or "-", _cost(j)) for j in found]
    console.table(["JOB", "TYPE", "STATUS", "SUBMITTED", "COST"], rows)
    return 0


def _cost(job: dc1.Job) -> str:
    return (
        sar(job.actual_cost_halala) if job.actual_cost_halala is not None else f"{sar(job.cost_halala)} held"
    )


def show(args: argparse.Namespace, console: Console) -> int:
    with client_for(args) as client:
        job = client.jobs.get(args.job_id)
        has_output = job.status == "completed" or (job.status == "running" and job.job_type == "vllm_serve")
        output = client.jobs.output(job.job_id) if has_output else None
    if console.json:
        console.data({"job": job.raw, "output": asdict(output) if output else None})
        return 0
    result = output.result if output else {}
    console.fields(
        [
            ("job", job.job_id),
            ("type", job.job_type),
            ("status", job.status),
            ("provider", job.provider_id),
            ("submitted", job.raw.get("submitted_at")),
            ("finished", job.raw.get("completed_at")),
            ("held", sar(job.cost_halala)),
            ("cost", sar(job.actual_cost_halala) if job.actual_cost_halala is not None else None),
            ("refunded", sar(job.refunded_halala) if job.refunded_halala else None),
            ("error", job.error),
            ("endpoint", output.endpoint_url if output else None),
            (
                "image",
                f"{result.get('width')}x{result.get('height')} PNG" if "image_base64" in result else None,
            ),
            ("output", output.text or result.get("output") if output else None),
        ]
    )
    return 0


def cancel(args: argparse.Namespace, console: Console) -> int:
    with client_for(args) as client:
        job = client.jobs.cancel(args.job_id)
    if console.json:
        console.data(job.raw)
        return 0
    console.line(
        f"{job.job_id} cancelled; charged {sar(job.actual_cost_halala)}, refunded {sar(job.refunded_halala)}"
    )
    return 0
