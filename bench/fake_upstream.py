"""A fast fake OpenAI-compatible engine on raw asyncio: canned chat completions, whole or streamed (SSE).

``python -m bench.fake_upstream --port N``. Every answer is built once at import, so the engine costs almost
nothing per request and whatever a gateway adds on top of it stands out. DCP's pool providers in the
benchmark relay to it as a daemon relays to its local engine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, cast

MODEL = "fake-model"
USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
WORDS = ("Ri", "ya", "dh")
CREATED = 1_764_000_000

ANSWER = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": CREATED,
        "model": MODEL,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Riyadh"}, "finish_reason": "stop"}
        ],
        "usage": USAGE,
    }
)


def _event(choices: list[dict[str, Any]], **extra: Any) -> str:
    chunk = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "choices": choices,
        **extra,
    }
    return f"data: {json.dumps(chunk)}\n\n"


# As an OpenAI engine streams: the role, one chunk per token, the finish, the usage (asked for or not).
EVENTS: tuple[str, ...] = (
    _event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]),
    *(_event([{"index": 0, "delta": {"content": word}, "finish_reason": None}]) for word in WORDS),
    _event([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
    _event([], usage=USAGE),
    "data: [DONE]\n\n",
)
MODELS = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "bench"}]})


def _response(body: str, *, media_type: str = "application/json") -> bytes:
    data = body.encode()
    head = f"HTTP/1.1 200 OK\r\ncontent-type: {media_type}\r\ncontent-length: {len(data)}\r\n\r\n"
    return head.encode() + data


def _streamed() -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    chunks = b"".join(f"{len(event.encode()):x}\r\n{event}\r\n".encode() for event in EVENTS)
    return head + chunks + b"0\r\n\r\n"


PLAIN_RESPONSE = _response(ANSWER)
STREAM_RESPONSE = _streamed()
MODELS_RESPONSE = _response(MODELS)


def wants_stream(body: bytes | str) -> bool:
    try:
        parsed = json.loads(body or "{}")
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("stream") is True


class _Engine(asyncio.Protocol):
    """One keep-alive connection: each complete request gets its canned answer at once."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport = cast(asyncio.Transport, None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            length = _content_length(head)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            if head.startswith(b"get"):
                self.transport.write(MODELS_RESPONSE)
            else:
                self.transport.write(STREAM_RESPONSE if wants_stream(body) else PLAIN_RESPONSE)


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


async def serve(port: int) -> None:
    server = await asyncio.get_running_loop().create_server(_Engine, "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fake_upstream", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    port = parser.parse_args().port
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(port))
    else:
        uvloop.run(serve(port))


if __name__ == "__main__":
    main()
