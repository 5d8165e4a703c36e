"""A small HTTP/1.1 client for the relay paths: the daemon to its local engines, a replica to the replica
holding a provider's link. Connections kept alive, bodies passed on as they come. Answers are parsed by
httptools (llhttp, as under uvicorn) over asyncio streams rather than through httpx: on a relayed /v1
request's path, httpx's layers cost about 1 ms more per request than this (measured at 25 requests/s; 0.3 ms
more when hot), and a replica relaying through httpx spent 40% of its CPU in it. h11, used here before,
cost 107 µs of CPU per exchange with a local engine where this costs about 45."""

from __future__ import annotations

import asyncio
import codecs
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

import httptools


class Http11Error(Exception):
    """The server could not be reached, was too slow, or broke HTTP."""


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    headers: dict[str, str]  # names in lower case
    text: AsyncIterator[str]  # the body as it comes, decoded as UTF-8


class _Message:
    """httptools' callbacks for one answer: its head, its body pieces not yet passed on, whether it ended.
    Informational answers (100 Continue) are passed over: the real answer follows them."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.reset()

    def reset(self) -> None:
        """Ready for the next answer on the connection."""
        self.headers: list[tuple[bytes, bytes]] = []
        self.head_done = self.done = self.informational = self.keep_alive = False
        self.until_close = False  # neither a length nor chunks: the body ends with the connection
        self.pieces: list[bytes] = []

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        if self.parser.get_status_code() < 200:
            self.headers, self.informational = [], True
        else:  # asked now: llhttp forgets it once the message completes
            self.head_done, self.keep_alive = True, self.parser.should_keep_alive()
            framed = {b"content-length", b"transfer-encoding"} & {name for name, _ in self.headers}
            self.until_close = not framed and self.parser.get_status_code() not in (204, 304)

    def on_body(self, body: bytes) -> None:
        self.pieces.append(body)

    def on_message_complete(self) -> None:
        if self.informational:
            self.informational = False
        else:
            self.done = True


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, timeout: float) -> None:
        self.reader, self.writer, self.timeout = reader, writer, timeout
        self.message = _Message()
        self.used_at = time.monotonic()

    async def send(self, head: bytes, body: bytes) -> None:
        self.writer.write(head + body)
        async with asyncio.timeout(self.timeout):
            await self.writer.drain()

    async def head(self) -> int:
        """The answer's status, once its head is read."""
        while not self.message.head_done:
            if not await self._read():
                raise Http11Error("the connection closed without an answer")
        return self.message.parser.get_status_code()

    async def body(self) -> AsyncIterator[bytes]:
        """The body as it comes, one piece per read (a stream's events that arrived together, its chunks
        joined: one frame on a daemon's link, not one each); Http11Error if the connection ends before the
        body does."""
        message = self.message
        while True:
            if message.pieces:
                read, message.pieces = b"".join(message.pieces), []
                yield read
            if message.done:
                return
            if not await self._read():
                if message.until_close:
                    return
                raise Http11Error("the answer ended early")

    async def _read(self) -> bool:
        """Feed what arrives to the parser; False at the end of the connection."""
        async with asyncio.timeout(self.timeout):
            data = await self.reader.read(65536)
        if not data:
            return False
        try:
            self.message.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            raise Http11Error(f"not HTTP: {exc}") from exc
        return True

    def reusable(self) -> bool:
        """True, and ready for the next request, once the answer ended and both sides keep the connection."""
        message = self.message
        if message.done and not message.until_close and message.keep_alive:
            message.reset()
            return True
        return False

    def closed_by_server(self) -> bool:
        """The server closed it while it idled (its keep-alive ran out): the event loop has read the end."""
        return self.reader.at_eof() or self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()


def _request_head(method: str, target: str, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers)]
    for line in lines:  # a header value taken from a request must not add headers of its own
        if not line.isprintable():
            raise Http11Error(f"a request line or header that HTTP cannot carry: {line[:100]!r}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="strict")


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
        try:
            head = _request_head(method, target, [*sent, *headers])
        except UnicodeEncodeError as exc:
            raise Http11Error("a header that is not Latin-1") from exc
        connection = self._idle_connection(where) or await self._open(where)
        kept = False
        try:
            try:
                await connection.send(head, body)
                status = await connection.head()
            except (OSError, TimeoutError) as exc:
                raise Http11Error(type(exc).__name__) from exc
            found = {
                name.decode("latin-1"): value.decode("latin-1") for name, value in connection.message.headers
            }
            content_type = found.get("content-type") or "application/json"
            yield Answer(status, content_type, found, _text(connection))
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


async def _text(connection: _Connection) -> AsyncIterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two reads
    try:
        async for piece in connection.body():
            if text := decoder.decode(piece):
                yield text
    except (OSError, TimeoutError) as exc:
        raise Http11Error(type(exc).__name__) from exc
    if tail := decoder.decode(b"", final=True):
        yield tail
