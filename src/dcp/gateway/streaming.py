"""A /v1 stream from the provider to the client: the usage chunk kept only if asked, a failure after the
first byte as an error event, and the provider's answer read to its end even when the client leaves."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from dcp.gateway.service import Admitted, Gateway, Upstream, finish, json_object
from dcp.jobs.relay import RelayError
from dcp.kit.errors import v1_envelope

DONE = "data: [DONE]\n\n"
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


async def _read_to_end(
    gateway: Gateway,
    admitted: Admitted,
    upstream: Upstream,
    events: StreamEvents,
    to_client: asyncio.Queue[str | None],
    chunk_object: str,
) -> None:
    error: str | None = "the gateway stopped relaying"  # unless the stream ends or fails as below
    try:
        for event in events.feed(upstream.first):
            to_client.put_nowait(event)
        async for piece in upstream.rest:
            for event in events.feed(piece):
                to_client.put_nowait(event)
        error = None if events.completed else "the provider's stream ended early"
    except RelayError as exc:
        error = f"the provider failed mid-stream: {exc}"
    finally:
        # Frees the provider's slot and bills the usage it reported, even if the stream broke after it.
        gateway.router.release(upstream.provider_id, ok=error is None)
        finish(
            gateway,
            admitted,
            provider_id=upstream.provider_id,
            usage=events.usage,
            error=None if events.usage else (error or "no usage reported"),
            attempts=upstream.attempts,
        )
        if error:
            to_client.put_nowait(_failure(admitted, error, chunk_object))
        to_client.put_nowait(DONE)
        to_client.put_nowait(None)


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
