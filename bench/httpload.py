"""Load from many clients: raw HTTP/1.1 keep-alive connections on asyncio protocols, open and closed loop."""

# Requests are built once as bytes (one per key, sent in turn) and answers are read by Content-Length only,
# so the generator stays far cheaper than the servers it loads. Open-loop latency counts from the moment a
# request was due, not when it left, so a server that falls behind shows it (no coordinated omission).

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, cast

from bench.processes import LOAD_CORE


def post(path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> bytes:
    data = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", "host: 127.0.0.1", "content-type: application/json"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append(f"content-length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


@contextlib.contextmanager
def on_load_core() -> Iterator[None]:
    """Run this process (the load generator) on its own core while the block lasts."""
    before = os.sched_getaffinity(0)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {LOAD_CORE})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight; the answer's status resolves it."""

    def __init__(self) -> None:
        self.transport = cast(asyncio.Transport, None)
        self.buffer = b""
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = _content_length(self.buffer[:end].lower())
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        self.buffer = self.buffer[end + 4 + length :]
        if self.waiter and not self.waiter.done():
            self.waiter.set_result(status)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter and not self.waiter.done():
            self.waiter.set_result(0)

    async def exchange(self, request: bytes) -> int:
        if self.closed:
            return 0
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return await self.waiter


def _content_length(head: bytes) -> int:
    start = head.find(b"content-length:")
    if start < 0:
        return 0
    stop = head.find(b"\r\n", start)
    return int(head[start + 15 : stop if stop >= 0 else None])


async def settle(cpu: Callable[[], float], *, seconds: float = 30) -> None:
    """Wait until the server has worked off what an earlier block left queued (its CPU time stops rising)."""
    last = cpu()
    for _ in range(int(seconds / 0.25)):
        await asyncio.sleep(0.25)
        now = cpu()
        if now - last < 0.01:
            return
        last = now


async def _open(port: int) -> _Connection:
    loop = asyncio.get_running_loop()
    _, connection = await loop.create_connection(_Connection, "127.0.0.1", port)
    return connection


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def count(self, status: int, *, expect: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == expect:
            self.ok += 1
        else:
            self.failed += 1


async def closed_loop(
    port: int,
    requests: list[bytes],
    *,
    connections: int,
    seconds: float,
    cpu: Callable[[], float],
    expect: int = 200,
    warmup: float = 1.0,
) -> dict[str, Any]:
    """Each connection sends its next request when the last is answered; rate and the server's CPU time."""
    turns, tally, stopping = itertools.cycle(requests), Tally(), asyncio.Event()

    async def worker() -> None:
        connection = await _open(port)
        while not stopping.is_set():
            status = await connection.exchange(next(turns))
            tally.count(status, expect=expect)
            if status == 0:  # the server closed it
                connection = await _open(port)
        connection.transport.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(warmup)
    ok, failed, cpu_before, started = tally.ok, tally.failed, cpu(), time.perf_counter()
    await asyncio.sleep(seconds)
    ok, failed = tally.ok - ok, tally.failed - failed
    cpu_used, wall = cpu() - cpu_before, time.perf_counter() - started
    stopping.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*workers, return_exceptions=True), timeout=30)
    return {
        "connections": connections,
        "requests": ok,
        "failed": failed,
        "statuses": tally.statuses,
        "requests_per_second": round(ok / wall, 1),
        "server_cpu_share": round(cpu_used / wall, 3),
        "requests_per_cpu_second": round(ok / cpu_used, 1) if cpu_used else 0.0,
    }


async def open_loop(
    port: int,
    requests: list[bytes],
    *,
    rate: float,
    seconds: float,
    cpu: Callable[[], float],
    expect: int = 200,
    connections: int = 64,
) -> dict[str, Any]:
    """Requests due at a fixed rate whatever the earlier ones take; latency from when each was due."""
    # Round robin over the idle connections, as many daemons each with its own connection would arrive.
    idle = collections.deque([await _open(port) for _ in range(connections)])
    turns, tally = itertools.cycle(requests), Tally()

    async def one(due: float) -> None:
        connection = idle.popleft() if idle else await _open(port)
        status = await connection.exchange(next(turns))
        tally.latencies.append(time.perf_counter() - due)
        tally.count(status, expect=expect)
        if status:
            idle.append(connection)

    flying: set[asyncio.Task[None]] = set()
    cpu_before, start = cpu(), time.perf_counter() + 0.01
    for n in range(int(rate * seconds)):
        due = start + n / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        task = asyncio.create_task(one(due))
        flying.add(task)
        task.add_done_callback(flying.discard)
    await asyncio.gather(*flying)
    wall, cpu_used = time.perf_counter() - start, cpu() - cpu_before
    for connection in idle:
        connection.transport.close()
    return {
        "rate_per_second": rate,
        "requests": tally.ok,
        "failed": tally.failed,
        "statuses": tally.statuses,
        "server_cpu_share": round(cpu_used / wall, 3),
        "latencies": tally.latencies,
    }
