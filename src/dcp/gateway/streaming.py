"""A /v1 answer read from the provider's stream (the gateway always asks engines to stream, so that a slow
first token fails over whether or not the client streams): relayed to a client that streams, with the usage
chunk kept only if asked and a failure after the first byte as an error event, or put together into one
answer for a client that does not; read to its end even when the client leaves."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import JSONResponse, Response

from dcp.gateway.service import Admitted, Gateway, Upstream, finish, json_object
from dcp.jobs.relay import RelayError
from dcp.kit.errors import v1_envelope

DONE = "data: [DONE]\n\n"
STOPPED = "the gateway stopped relaying"  # why a read that neither ended nor failed (it was cancelled) ended
# Engines send an event per token: one this long without its blank line is not server-sent events.
MAX_EVENT_CHARS = 1 << 20


async def relay_stream(
    gateway: Gateway, admitted: Admitted, upstream: Upstream, *, client_wants_usage: bool, chunk_object: str
) -> AsyncIterator[str]:
    """The events to send the client. The provider's stream is read by a task of its own, so a client that
    leaves (a closed connection, "stop generating") does not stop it: the provider's engine generates the
    whole answer anyway, and the renter is billed the usage it reports at the end, as if the client stayed.
    Billing is queued before the final ``[DONE]`` reaches the client."""
    to_client: asyncio.Queue[str | None] = asyncio.Queue()
    events = StreamEvents(client_wants_usage=client_wants_usage)
    gateway.in_background(_read_to_end(gateway, admitted, upstream, events, to_client, chunk_object))
    while (event := await to_client.get()) is not None:
        yield event


async def whole_answer(
    gateway: Gateway, admitted: Admitted, upstream: Upstream, *, chat: bool, headers: dict[str, str]
) -> Response:
    """One answer for a client that did not ask to stream, put together from the provider's stream, and
    billed as a stream is; one that broke off before its usage came is a retryable 502 that costs nothing
    (after it, the answer is whole and billed, and sent)."""
    events = StreamEvents(client_wants_usage=True)
    answer = WholeAnswer(chat=chat, request_id=admitted.request_id)
    if await _read(gateway, admitted, upstream, events, answer.add) and not events.usage:
        message = "The provider's answer broke off before it was complete; retry"
        return JSONResponse(v1_envelope(502, message), status_code=502)
    return JSONResponse(answer.whole(events.usage), headers=headers)


async def _read_to_end(
    gateway: Gateway,
    admitted: Admitted,
    upstream: Upstream,
    events: StreamEvents,
    to_client: asyncio.Queue[str | None],
    chunk_object: str,
) -> None:
    error: str | None = STOPPED  # unless the read below returns
    try:
        error = await _read(gateway, admitted, upstream, events, to_client.put_nowait)
    finally:
        if error:
            to_client.put_nowait(_failure(admitted, error, chunk_object))
        to_client.put_nowait(DONE)
        to_client.put_nowait(None)


async def _read(
    gateway: Gateway,
    admitted: Admitted,
    upstream: Upstream,
    events: StreamEvents,
    each: Callable[[str], None],
) -> str | None:
    """Hands on each of the provider's events to ``each``; then frees the provider's slot and bills the usage
    it reported, even if the stream broke after it. Returns why the stream failed, or None."""
    error: str | None = STOPPED  # unless the stream ends or fails as below
    try:
        for event in events.feed(upstream.first):
            each(event)
        async for piece in upstream.rest:
            for event in events.feed(piece):
                each(event)
        error = None if events.completed else "the provider's stream ended early"
    except RelayError as exc:
        error = f"the provider failed mid-stream: {exc}"
    finally:
        gateway.router.release(upstream.provider_id, ok=error is None)
        finish(
            gateway,
            admitted,
            provider_id=upstream.provider_id,
            usage=events.usage,
            error=None if events.usage else (error or "no usage reported"),
            attempts=upstream.attempts,
        )
    return error


def _failure(admitted: Admitted, error: str, chunk_object: str) -> str:
    envelope = v1_envelope(
        502, f"Provider failed after streaming started: {error}", code="provider_unavailable"
    )
    failure = {
        "object": chunk_object,
        "model": admitted.model,
        "choices": [{"index": 0, "delta": {}, "text": "", "finish_reason": "error"}],
        **envelope,
    }
    return "data: " + json.dumps(failure) + "\n\n"


class StreamEvents:
    """The provider's server-sent events, split from the pieces they arrive in; keeps the usage the
    provider reports and strips its usage chunk when the client did not ask for it."""

    def __init__(self, *, client_wants_usage: bool) -> None:
        self.client_wants_usage = client_wants_usage
        self.usage: dict[str, Any] | None = None
        self.completed = False  # its ``[DONE]`` came
        self._buffer = ""

    def feed(self, piece: str) -> list[str]:
        """The whole events ``piece`` completes, as they are sent on."""
        self._buffer += piece
        sent = []
        while "\n\n" in self._buffer:
            event, self._buffer = self._buffer.split("\n\n", 1)
            if (kept := self._kept(event)) is not None:
                sent.append(kept + "\n\n")
        if len(self._buffer) > MAX_EVENT_CHARS:
            raise RelayError("its stream is not server-sent events")
        return sent

    def _kept(self, event: str) -> str | None:
        data = event.removeprefix("data: ").strip()
        if data == "[DONE]":
            self.completed = True
            return None
        # Only an event that names usage is parsed: the others pass through as they came.
        parsed = json_object(data) if '"usage"' in data else None
        if parsed is None or not parsed.get("usage"):
            return event
        self.usage = parsed["usage"]
        if self.client_wants_usage:
            return event
        if not parsed.get("choices"):
            return None
        parsed.pop("usage")
        return "data: " + json.dumps(parsed)


class WholeAnswer:
    """A completion put together from its stream's chunks: their text in order, the last finish reason, and
    the first chunk's id, creation time and model."""

    def __init__(self, *, chat: bool, request_id: str) -> None:
        self.chat, self.request_id = chat, request_id
        self.parts: list[str] = []
        self.head: dict[str, Any] = {}
        self.finish_reason: Any = None

    def add(self, event: str) -> None:
        chunk = json_object(event.removeprefix("data: ").strip())
        if chunk is None:
            return
        self.head = self.head or chunk
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            source = choice.get("delta") if self.chat else choice
            text = source.get("content" if self.chat else "text") if isinstance(source, dict) else None
            if isinstance(text, str):
                self.parts.append(text)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason

    def whole(self, usage: Any) -> dict[str, Any]:
        text = "".join(self.parts)
        choice = (
            {"index": 0, "message": {"role": "assistant", "content": text}}
            if self.chat
            else {"index": 0, "text": text}
        )
        answer = {
            "id": self.head.get("id") or self.request_id,
            "object": "chat.completion" if self.chat else "text_completion",
            "created": self.head.get("created") or int(time.time()),
            "model": self.head.get("model"),
            "choices": [{**choice, "logprobs": None, "finish_reason": self.finish_reason}],
        }
        if isinstance(usage, dict):
            answer["usage"] = usage
        return answer
