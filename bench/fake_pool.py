"""Serving-pool providers for the gateway benchmark: each runs the daemon's own link (``dcp.agent.link.Link``)
and relays /v1 requests to the fake upstream engine, as a daemon relays them to its local engine.

``python -m bench.fake_pool --base URL --upstream URL --ready-file PATH KEY...``: one provider per key. Each
declares its serving model by heartbeat, connects its link, then the ready file is written.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

import httpx

from bench import fake_upstream
from dcp.agent.link import Link, ServerClient
from dcp.agent.main import run_event_loop


async def _declare(base: str, keys: list[str], *, concurrency: int) -> None:
    serving = {"models": [fake_upstream.MODEL], "ready": True, "concurrency": concurrency}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for key in keys:
            answer = await http.post(
                "/api/providers/heartbeat", headers={"x-provider-key": key}, json={"serving": serving}
            )
            if answer.status_code != 200:
                raise RuntimeError(f"heartbeat refused: {answer.status_code} {answer.text}")


async def _no_jobs(task: dict[str, Any]) -> None:
    raise RuntimeError(f"the gateway benchmark pushes no jobs, got {task.get('job_id')}")


def _link(base: str, key: str, upstream: str) -> Link:
    return Link(
        ServerClient(base, key),
        on_task=_no_jobs,
        on_stop=lambda _job_id: None,
        has_free_slot=lambda: False,
        endpoint_for=lambda _job_id: upstream,
    )


async def serve(base: str, keys: list[str], *, upstream: str, concurrency: int, ready_file: Path) -> None:
    await _declare(base, keys, concurrency=concurrency)
    links = [_link(base, key, upstream) for key in keys]
    running = [asyncio.create_task(link.run()) for link in links]
    async with asyncio.timeout(30):
        # The daemon's link tells only by its mode that it is connected.
        while any(link.mode != "websocket" for link in links):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    await asyncio.to_thread(ready_file.write_text, "ready\n")
    await asyncio.gather(*running)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_pool", description=__doc__)
    parser.add_argument("--base", required=True)
    parser.add_argument("--upstream", required=True, help="the fake engine's base URL")
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("keys", nargs="+")
    args = parser.parse_args()
    work = serve(
        args.base, args.keys, upstream=args.upstream, concurrency=args.concurrency, ready_file=args.ready_file
    )
    run_event_loop(work)  # as the daemon runs its link


if __name__ == "__main__":
    main()
