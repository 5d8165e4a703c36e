"""A small HTTP/1.1 client for the relay paths: the daemon to its local engines, a replica to the replica
holding a provider's link. Connections kept alive, bodies passed on as they come. h11 over asyncio streams
rather than httpx: on a relayed /v1 request's path, httpx's layers cost about 1 ms more per request than this
(measured at 25 requests/s; 0.3 ms more when hot), and a replica relaying through httpx spent 40% of its CPU
in it."""

from __future__ import annotations

import asyncio
import codecs
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11


class Http11Error(Exception):
    """The server could not be reached, was too slow, or broke HTTP."""


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    headers: dict[str, str]  # names in lower case
    text: AsyncIterator[str]  # the body as it comes, decoded as UTF-8


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, timeout: float) -> None:
        self.reader, self.writer, self.timeout = reader, writer, timeout
        self.http = h11.Connection(h11.CLIENT)
        self.used_at = time.monotonic()

    async def send(self, request: h11.Request, body: bytes) -> None:
        self.writer.write(
            self.http.send(request) + self.http.send(h11.Data(data=body)) + self.http.send(h11.EndOfMessage())
        )
        async with asyncio.timeout(self.timeout):
            await self.writer.drain()

    async def next_event(self) -> object:
        """An h11 event, or h11.PAUSED once the answer is complete."""
        while (event := self.http.next_event()) is h11.NEED_DATA:
            async with asyncio.timeout(self.timeout):
                self.http.receive_data(await self.reader.read(65536))  # b"" at EOF
        return event

    def reusable(self) -> bool:
        """True, and ready for the next request, once both sides finished this one and both keep it open."""
        if self.http.our_state is h11.DONE and self.http.their_state is h11.DONE:
            self.http.start_next_cycle()
            return True
        return False

    def closed_by_server(self) -> bool:
        """The server closed it while it idled (its keep-alive ran out): the event loop has read the end."""
        return self.reader.at_eof() or self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


class Http11Client:
    """Keeps idle connections per server for ``keepalive_seconds``: shorter than servers keep them (uvicorn,
    under vLLM and DCP, closes them after 5 s), so that no request goes out on a connection being closed."""

    def __init__(
        self, *, connect_seconds: float = 5.0, read_seconds: float = 300.0, keepalive_seconds: float = 2.0
    ) -> None:
        self.connect_seconds, self.read_seconds, self.keepalive_seconds = (
            connect_seconds,
            read_seconds,
            keepalive_seconds,
        )
        self._idle: dict[tuple[str, int], list[_Connection]] = {}

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes,
        content_type: str,
        headers: Sequence[tuple[str, str]] = (),
    ) -> AsyncIterator[Answer]:
        """Send one request; the answer's body is read while the block runs. Http11Error for a connection
        that fails, a server silent for ``read_seconds`` or an answer that is not HTTP."""
        parts = urlsplit(url)
        if parts.scheme != "http" or parts.hostname is None:
            raise Http11Error(f"not a plain http:// address: {url[:100]}")
        where = (parts.hostname, parts.port or 80)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        sent = [("host", parts.netloc), ("content-type", content_type), ("content-length", str(len(body)))]
        connection = self._idle_connection(where) or await self._open(where)
        kept = False
        try:
            try:
                await connection.send(
                    h11.Request(method=method, target=target, headers=[*sent, *headers]), body
                )
                head = await _head(connection)
            except (OSError, TimeoutError, h11.ProtocolError) as exc:
                raise Http11Error(type(exc).__name__) from exc
            found = {name.decode("latin-1"): value.decode("latin-1") for name, value in head.headers}
            content_type = found.get("content-type") or "application/json"
            yield Answer(head.status_code, content_type, found, _text(connection))
            kept = connection.reusable()
        finally:
            if kept:
                connection.used_at = time.monotonic()
                self._idle.setdefault(where, []).append(connection)
            else:
                connection.close()

    def _idle_connection(self, where: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(where, [])
        while idle:
            connection = idle.pop()
            # An engine may keep connections for less time than we would (llama.cpp's server closed one after
            # about a second): a request sent on one it closed would fail.
            if (
                time.monotonic() - connection.used_at < self.keepalive_seconds
                and not connection.closed_by_server()
            ):
                return connection
            connection.close()
        return None

    async def _open(self, where: tuple[str, int]) -> _Connection:
        try:
            async with asyncio.timeout(self.connect_seconds):
                reader, writer = await asyncio.open_connection(*where)
        except (OSError, TimeoutError) as exc:
            raise Http11Error(f"cannot connect: {type(exc).__name__}") from exc
        return _Connection(reader, writer, timeout=self.read_seconds)

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


async def _head(connection: _Connection) -> h11.Response:
    while True:  # informational answers (100 Continue) come before the real one
        event = await connection.next_event()
        if isinstance(event, h11.Response):
            return event
        if not isinstance(event, h11.InformationalResponse):
            raise Http11Error("the connection closed without an answer")


async def _text(connection: _Connection) -> AsyncIterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two reads
    while True:
        try:
            event = await connection.next_event()
        except (OSError, TimeoutError, h11.ProtocolError) as exc:
            raise Http11Error(type(exc).__name__) from exc
        if isinstance(event, h11.Data):
            if text := decoder.decode(bytes(event.data)):
                yield text
        elif isinstance(event, h11.EndOfMessage):
            if tail := decoder.decode(b"", final=True):
                yield tail
            return
        else:
            raise Http11Error("the answer ended early")
