"""A byte forwarder: the least a process placed between a client and a server can do.

``python -m bench.forwarder --port P --to Q``: each connection accepted on P gets its own connection to Q, and
bytes are copied both ways as they come, with no parsing. The gateway benchmark chains two of them where DCP's
server (core 0) and its provider's daemon (core 1) stand, so the latency they add is what the topology alone
costs on this machine (the process wakeups and loopback copies of the two extra hops), measured in the same
run as DCP and beside the same direct call.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast


class _Back(asyncio.Protocol):
    """The connection to the server: what it sends goes to the client."""

    def __init__(self, front: asyncio.Transport) -> None:
        self.front = front

    def data_received(self, data: bytes) -> None:
        self.front.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.close()


class _Front(asyncio.Protocol):
    """A client's connection: what it sends goes to the server, once that connection is open."""

    def __init__(self, to: int) -> None:
        self.to = to
        self.back: asyncio.Transport | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.front = cast(asyncio.Transport, transport)
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        back, _ = await loop.create_connection(lambda: _Back(self.front), "127.0.0.1", self.to)
        self.back = back
        for data in self.early:
            back.write(data)
        self.early.clear()

    def data_received(self, data: bytes) -> None:
        if self.back is None:
            self.early.append(data)
        else:
            self.back.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.back is not None:
            self.back.close()


async def serve(port: int, to: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Front(to), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.forwarder", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--to", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.port, args.to))
    else:  # as DCP's server and daemon run
        uvloop.run(serve(args.port, args.to))


if __name__ == "__main__":
    main()
