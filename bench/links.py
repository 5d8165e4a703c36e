"""Many simulated daemons' WebSocket links (``dcp-link/1``): held open idle, or sending heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import websockets
from websockets.asyncio.client import ClientConnection

PROTOCOL = "dcp-link/1"
_CONNECTING_AT_ONCE = 50


@dataclass
class Link:
    ws: ClientConnection
    acks: asyncio.Queue[float] = field(default_factory=asyncio.Queue)
    jobs: int = 0

    async def read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                kind = json.loads(raw).get("type")
                if kind == "heartbeat_ack":
                    self.acks.put_nowait(time.perf_counter())
                elif kind == "job":
                    self.jobs += 1


@asynccontextmanager
async def connected(base: str, keys: list[str]) -> AsyncIterator[list[Link]]:
    """One link per key, opened a few dozen at a time; all closed when the block ends."""
    url = base.replace("http://", "ws://") + "/api/providers/link"
    gate, links = asyncio.Semaphore(_CONNECTING_AT_ONCE), list[Link]()

    async def open_one(key: str) -> Link:
        async with gate:
            headers = {"x-provider-key": key, "x-dcp-protocol": PROTOCOL}
            ws = await websockets.connect(
                url, additional_headers=headers, open_timeout=60, ping_interval=None
            )
            return Link(ws)

    links = list(await asyncio.gather(*(open_one(key) for key in keys)))
    readers = [asyncio.create_task(link.read()) for link in links]
    try:
        yield links
    finally:
        await asyncio.gather(*(link.ws.close() for link in links), return_exceptions=True)
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


async def beat(
    links: list[Link], bodies: list[dict[str, Any]], *, rate: float, seconds: float, cpu: Callable[[], float]
) -> dict[str, Any]:
    """Heartbeats over the links in turn at a fixed rate; latency from when each was due to its ack."""
    latencies: list[float] = []
    turns = itertools.cycle(zip(links, bodies, strict=False))

    async def one(link: Link, body: dict[str, Any], due: float) -> None:
        await link.ws.send(json.dumps({"type": "heartbeat", "body": body}))
        latencies.append(await asyncio.wait_for(link.acks.get(), timeout=60) - due)

    flying: set[asyncio.Task[None]] = set()
    cpu_before, start = cpu(), time.perf_counter() + 0.01
    for n in range(int(rate * seconds)):
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        task = asyncio.create_task(one(*next(turns), due))
        flying.add(task)
        task.add_done_callback(flying.discard)
    await asyncio.gather(*flying, return_exceptions=True)
    wall = time.perf_counter() - start
    return {
        "rate_per_second": rate,
        "acked": len(latencies),
        "server_cpu_share": round((cpu() - cpu_before) / wall, 3),
        "latencies": latencies,
    }
