"""Simulated serving-pool providers for the gateway benchmark: each holds a real WebSocket link to the server
and answers relayed /v1 requests with the fake upstream's canned bodies, as fast as that engine would.

``python -m bench.fake_pool --base URL --ready-file PATH KEY...``: one provider per key. Each declares its
serving model by heartbeat, connects its link as the daemon does (same options), then writes the ready file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import websockets

from bench import fake_upstream

PROTOCOL = "dcp-link/1"
_PLAIN = (json.dumps(fake_upstream.ANSWER),)
_STREAM = tuple(json.dumps(event) for event in fake_upstream.EVENTS)


def _frames(request_id: str, *, stream: bool) -> list[str]:
    """The link frames that carry one canned answer: start, one chunk per SSE event (or the body), end."""
    media_type = "text/event-stream" if stream else "application/json"
    rid = json.dumps(request_id)
    start = f'{{"type": "http_start", "id": {rid}, "status": 200, "content_type": "{media_type}"}}'
    chunks = [
        f'{{"type": "http_chunk", "id": {rid}, "data": {data}}}' for data in (_STREAM if stream else _PLAIN)
    ]
    return [start, *chunks, f'{{"type": "http_end", "id": {rid}}}']


async def _declare(base: str, keys: list[str], *, concurrency: int) -> None:
    serving = {"models": [fake_upstream.MODEL], "ready": True, "concurrency": concurrency}
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        for key in keys:
            answer = await http.post(
                "/api/providers/heartbeat", headers={"x-provider-key": key}, json={"serving": serving}
            )
            if answer.status_code != 200:
                raise RuntimeError(f"heartbeat refused: {answer.status_code} {answer.text}")


async def _provider(base: str, key: str, connected: asyncio.Queue[str]) -> None:
    url = base.replace("http://", "ws://") + "/api/providers/link"
    headers = {"x-provider-key": key, "x-dcp-protocol": PROTOCOL}
    async with websockets.connect(
        url,
        additional_headers=headers,
        open_timeout=10,
        ping_interval=20,
        max_size=8 * 1024 * 1024,
        compression=None,
    ) as ws:
        await connected.put(key)
        async for raw in ws:
            message: dict[str, Any] = json.loads(raw)
            if message.get("type") == "http":
                stream = fake_upstream.wants_stream(str(message.get("body", "")))
                for frame in _frames(str(message["id"]), stream=stream):
                    await ws.send(frame)


async def serve(base: str, keys: list[str], *, concurrency: int, ready_file: Path) -> None:
    await _declare(base, keys, concurrency=concurrency)
    connected: asyncio.Queue[str] = asyncio.Queue()
    links = [asyncio.create_task(_provider(base, key, connected)) for key in keys]
    for _ in keys:
        await asyncio.wait_for(connected.get(), timeout=30)
    await asyncio.to_thread(ready_file.write_text, "ready\n")
    await asyncio.gather(*links)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_pool", description=__doc__)
    parser.add_argument("--base", required=True)
    parser.add_argument("--ready-file", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("keys", nargs="+")
    args = parser.parse_args()
    work = serve(args.base, args.keys, concurrency=args.concurrency, ready_file=args.ready_file)
    try:
        import uvloop
    except ImportError:
        asyncio.run(work)
    else:
        uvloop.run(work)


if __name__ == "__main__":
    main()
