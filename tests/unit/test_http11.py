"""The relay paths' HTTP/1.1 client against a bare server: bodies by length, chunked or until close,
headers both ways, kept-alive connections, and every failure an Http11Error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from dcp.kit.http11 import Http11Client, Http11Error

_STREAM = "data: مرحبا\n\n".encode()  # Arabic: its two-byte characters split across chunks below


@contextlib.asynccontextmanager
async def _engine(
    answer: bytes, *, close: bool = False, heads: list[bytes] | None = None
) -> AsyncIterator[tuple[str, list[int]]]:
    """A server that answers each request with ``answer`` (closing the connection after it when ``close``),
    and the count of connections it accepted; the requests' heads go into ``heads``."""
    connections = [0]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while head := await reader.readuntil(b"\r\n\r\n"):
                if heads is not None:
                    heads.append(head)
                length = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")]
                await reader.readexactly(int(length[0].split(b":")[1]))
                writer.write(answer)
                await writer.drain()
                if close:
                    break
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}", connections
    finally:
        server.close()
        await server.wait_closed()


async def _ask(client: Http11Client, url: str) -> tuple[int, str, list[str]]:
    async with client.request(
        "POST", f"{url}/v1/chat/completions", body=b"{}", content_type="application/json"
    ) as a:
        return a.status, a.content_type, [text async for text in a.text]


async def test_a_chunked_stream_is_passed_on_as_it_comes_and_decoded_across_chunks() -> None:
    half = len(_STREAM) // 2 + 1  # inside a two-byte character
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (_STREAM[:half], _STREAM[half:]))
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    client = Http11Client()
    async with _engine(answer + chunks + b"0\r\n\r\n") as (url, connections):
        status, content_type, texts = await _ask(client, url)
        assert (status, content_type) == (200, "text/event-stream")
        assert texts == [_STREAM.decode()]  # chunks read together come as one piece: one frame on a link
        await _ask(client, url)
        assert connections == [1]  # kept alive for the second request
    client.close()


async def test_a_body_until_close_and_the_engines_status() -> None:
    answer = (
        b'HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"error": 1}'
    )
    client = Http11Client()
    async with _engine(answer, close=True) as (url, connections):
        assert await _ask(client, url) == (400, "application/json", ['{"error": 1}'])
        assert await _ask(client, url) == (400, "application/json", ['{"error": 1}'])
        assert connections == [2]  # the engine closed the first
    client.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\ncontent-length: 50\r\n\r\n{}",  # shorter than it said
        b"not http at all\r\n\r\n",
        b"",  # closed without answering
    ],
)
async def test_a_broken_answer_is_an_engine_error(answer: bytes) -> None:
    client = Http11Client()
    async with _engine(answer, close=True) as (url, _):
        with pytest.raises(Http11Error):
            await _ask(client, url)
    client.close()


async def test_an_engine_that_is_down_or_silent_is_an_engine_error() -> None:
    async with _engine(b"") as (url, _):
        pass  # closed: nothing listens there any more
    with pytest.raises(Http11Error):
        await _ask(Http11Client(), url)
    client = Http11Client(read_seconds=0.05)
    async with _engine(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n") as (url, _):
        with pytest.raises(Http11Error):
            await _ask(client, url)
    client.close()


async def test_headers_go_out_and_come_back() -> None:
    heads: list[bytes] = []
    answer = b"HTTP/1.1 201 Created\r\nX-DCP-Status: 429\r\ncontent-length: 2\r\n\r\n{}"
    client = Http11Client()
    async with _engine(answer, heads=heads) as (url, _):
        extra = [("x-dcp-job", "pool")]
        async with client.request("POST", url, body=b"{}", content_type="text/plain", headers=extra) as a:
            assert [text async for text in a.text] == ["{}"]
    client.close()
    assert (a.status, a.content_type, a.headers["x-dcp-status"]) == (201, "application/json", "429")
    assert b"x-dcp-job: pool" in heads[0] and b"content-type: text/plain" in heads[0]


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"  # keep-alive, then closed anyway
    client = Http11Client()
    async with _engine(answer, close=True) as (url, connections):
        assert await _ask(client, url) == (200, "application/json", ["{}"])
        await asyncio.sleep(0.05)  # the server's close arrives while the connection idles
        assert await _ask(client, url) == (200, "application/json", ["{}"])
        assert connections == [2]
    client.close()


async def test_an_informational_answer_before_the_real_one_is_passed_over() -> None:
    answer = (
        b"HTTP/1.1 100 Continue\r\nx-early: 1\r\n\r\n"
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
    )
    client = Http11Client()
    async with _engine(answer) as (url, connections):
        async with client.request("POST", url, body=b"{}", content_type="application/json") as a:
            assert [text async for text in a.text] == ["{}"]
        assert (a.status, "x-early" in a.headers) == (200, False)
        assert await _ask(client, url) == (200, "application/json", ["{}"])
        assert connections == [1]
    client.close()


@pytest.mark.parametrize("value", ["pool\r\nx-admin: 1", "pool\nx", "مرحبا"])
async def test_a_header_that_http_cannot_carry_is_refused_before_anything_is_sent(value: str) -> None:
    heads: list[bytes] = []
    client = Http11Client()
    async with _engine(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", heads=heads) as (url, connections):
        with pytest.raises(Http11Error):
            async with client.request(
                "POST", url, body=b"{}", content_type="application/json", headers=[("x-dcp-path", value)]
            ):
                pass
        assert (heads, connections) == ([], [0])
    client.close()
