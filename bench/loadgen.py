"""The load generator: a lean HTTP/1.1 keep-alive client, open-loop latency runs and closed-loop throughput.

It speaks just enough HTTP (Content-Length and chunked bodies) to stay far cheaper than the servers it loads,
so on its own core it never becomes the limit it is measuring.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_OPEN_CONNECTIONS = 8


@dataclass(frozen=True)
class Target:
    """One endpoint and the request sent to it, built once."""

    name: str
    port: int
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    def raw(self) -> bytes:
        data = json.dumps(self.body).encode()
        lines = [f"POST {self.path} HTTP/1.1", "host: 127.0.0.1", "content-type: application/json"]
        lines += [f"{name}: {value}" for name, value in self.headers.items()]
        lines.append(f"content-length: {len(data)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


@dataclass(frozen=True)
class Sample:
    first: float  # seconds from sending to the first SSE event (or to the whole body)
    total: float  # seconds from sending to the last byte


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def close(self) -> None:
        self.writer.close()

    async def exchange(self, request: bytes) -> tuple[int, float, bytes]:
        """Send one request; the status, when the first event (or body) came, and the body."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lowered = head.lower()
        if b"transfer-encoding: chunked" in lowered:
            return (status, *await self._chunked())
        length = 0
        for line in lowered.split(b"\r\n"):
            if line.startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self.reader.readexactly(length)
        return status, time.perf_counter(), body

    async def _chunked(self) -> tuple[float, bytes]:
        parts: list[bytes] = []
        first = 0.0
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return first or time.perf_counter(), b"".join(parts)
            data = await self.reader.readexactly(size + 2)
            if not first and b"data:" in data:
                first = time.perf_counter()
            parts.append(data[:-2])


def _answered(target: Target, status: int, body: bytes) -> bool:
    """A right answer: 200 with the canned text, and a stream that ended with [DONE]."""
    if status != 200:
        return False
    return b"[DONE]" in body and b'"ya"' in body if target.stream else b"Riyadh" in body


class _Pool:
    """Idle keep-alive connections; a new one is opened only when every other is busy."""

    def __init__(self, port: int) -> None:
        self.port, self.idle = port, list[_Connection]()

    async def fill(self, count: int) -> None:
        self.idle += [await _Connection.open(self.port) for _ in range(count)]

    async def exchange(self, request: bytes) -> tuple[int, float, float, bytes]:
        """Status, when it was sent, first event and body; a kept connection the server has since closed
        (idle timeout) is replaced once."""
        sent = time.perf_counter()
        for reuse in (True, False):
            reused = reuse and bool(self.idle)
            connection = self.idle.pop() if reused else await _Connection.open(self.port)
            sent = time.perf_counter()
            try:
                status, first, body = await connection.exchange(request)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                connection.close()
                if reused:
                    continue
                return 0, sent, sent, b""
            self.idle.append(connection)
            return status, sent, first, body
        return 0, sent, sent, b""

    def close(self) -> None:
        for connection in self.idle:
            connection.close()


async def open_loop(target: Target, *, rate: float, seconds: float) -> tuple[list[Sample], int]:
    """Requests leave at a fixed rate, whatever the earlier ones take; the samples and the failures."""
    request, samples, failures = target.raw(), list[Sample](), [0]
    pool = _Pool(target.port)
    await pool.fill(_OPEN_CONNECTIONS)

    async def one() -> None:
        status, sent, first, body = await pool.exchange(request)
        done = time.perf_counter()
        if _answered(target, status, body):
            samples.append(Sample(first - sent, done - sent))
        else:
            failures[0] += 1

    flying: set[asyncio.Task[None]] = set()
    start = time.perf_counter() + 0.01
    for n in range(int(rate * seconds)):
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        task = asyncio.create_task(one())
        flying.add(task)
        task.add_done_callback(flying.discard)
    await asyncio.gather(*flying)
    pool.close()
    return samples, failures[0]


async def closed_loop(
    target: Target, *, connections: int, warmup: float, seconds: float, cpu: Callable[[], float]
) -> dict[str, float]:
    """Each connection sends its next request as soon as the last is answered; the server's CPU time over
    the measured window gives requests per second per core, whatever else shares the machine."""
    request, counts, stopping = target.raw(), {"ok": 0, "failed": 0}, asyncio.Event()

    async def worker() -> None:
        pool = _Pool(target.port)
        while not stopping.is_set():
            status, _, _, body = await pool.exchange(request)
            counts["ok" if _answered(target, status, body) else "failed"] += 1
        pool.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(warmup)
    ok, failed, cpu_before, started = counts["ok"], counts["failed"], cpu(), time.perf_counter()
    await asyncio.sleep(seconds)
    ok, failed = counts["ok"] - ok, counts["failed"] - failed
    cpu_used, wall = cpu() - cpu_before, time.perf_counter() - started
    stopping.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*workers), timeout=30)
    return {
        "requests": ok,
        "failed": failed,
        "wall_seconds": round(wall, 2),
        "server_cpu_seconds": round(cpu_used, 2),
        "server_cpu_share": round(cpu_used / wall, 2),
        "requests_per_second": round(ok / wall, 1),
        "requests_per_cpu_second": round(ok / cpu_used, 1) if cpu_used else 0.0,
    }
