"""The daemon's status page, on loopback only: ``GET /status`` answers JSON for ``dcp provider status``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

_MAX_REQUEST_BYTES = 8192


class StatusServer:
    def __init__(self, port: int, describe: Callable[[], dict[str, Any]]) -> None:
        self.port, self.describe = port, describe
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._answer, host="127.0.0.1", port=self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b"/"
            if len(request) > _MAX_REQUEST_BYTES or path not in (b"/", b"/status"):
                status, body = "404 Not Found", {"error": "Not found"}
            else:
                status, body = "200 OK", self.describe()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            writer.close()
            return
        payload = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {len(payload)}\r\n"
            "connection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
