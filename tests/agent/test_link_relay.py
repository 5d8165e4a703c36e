"""The daemon's side of a relayed /v1 request: forwarded to the local engine, answered in link frames, and the
engine's connection kept for the next request."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dcp.agent.link import Link, ServerClient

_BODY = b'{"choices": [{"message": {"content": "Riyadh"}}]}'


class _Engine:
    """A local engine on loopback that answers every request with ``_BODY`` and counts its connections."""

    def __init__(self) -> None:
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError):  # the client closed the connection
            await self._answer(reader, writer)
        writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = next(
                int(line.split(b":")[1])
                for line in head.lower().split(b"\r\n")
                if line.startswith(b"content-length")
            )
            await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s"
                % (len(_BODY), _BODY)
            )
            await writer.drain()


class _Frames:
    """Stands in for the link's WebSocket: keeps what the daemon sends."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))


@pytest.fixture
async def engine() -> AsyncIterator[tuple[_Engine, str]]:
    served = _Engine()
    address = await served.start()
    yield served, address
    assert served.server is not None
    served.server.close()
    await served.server.wait_closed()


async def _no_task(task: dict[str, Any]) -> None:
    raise AssertionError(task)


async def test_relayed_requests_are_answered_in_frames_over_one_engine_connection(
    engine: tuple[_Engine, str],
) -> None:
    served, address = engine
    link = Link(
        ServerClient("http://127.0.0.1:9", "dc1-provider-test"),
        on_task=_no_task,
        on_stop=lambda _job_id: None,
        has_free_slot=lambda: False,
        endpoint_for=lambda _job_id: address,
    )
    frames = _Frames()
    link._ws = frames
    for request_id in ("1", "2"):
        request = {"type": "http", "id": request_id, "job_id": "pool", "method": "POST"}
        await link._relay({**request, "path": "v1/chat/completions", "body": "{}"})
    assert [(frame["type"], frame["id"]) for frame in frames.sent] == [
        (kind, request_id) for request_id in ("1", "2") for kind in ("http_start", "http_chunk", "http_end")
    ]
    assert frames.sent[0]["status"] == 200
    assert frames.sent[1]["data"] == _BODY.decode()
    assert served.connections == 1  # kept alive, not one connection (and one client) per request
    link._engines.close()
    await link.client.close()
