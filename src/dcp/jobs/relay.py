"""Requests for a provider whose link landed on another replica: relayed to that replica over HTTP.

A daemon holds one link, to one replica. A replica started with ``DCP_REPLICA_URL`` records that address with
each link it accepts (``providers.link_replica``). Another replica with a /v1 or endpoint request for that
provider sends it to ``POST /api/internal/relay`` at that address, which puts it on the link and streams the
answer back: the engine's status and content type in ``x-dcp-status`` and ``x-dcp-content-type``, its body
as it comes. Replicas prove themselves to each other with a token derived from the ``DCP_SECRET_KEY`` they
share. The replica that received the request does the rest (routing, failover, billing) as for a link of
its own; the one holding the link also counts the request against the provider's declared concurrency."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from dcp.gateway.routing import Candidate
from dcp.kit.errors import AppError, BadRequest, Forbidden, NotFound
from dcp.kit.http11 import Answer, Http11Client, Http11Error

INTERNAL_PATH = "/api/internal/relay"
_START_SECONDS = 60.0  # as for a link's own frames: a body silent this long has ended

router = APIRouter()


class RelayError(Exception):
    """The provider could not be reached through its link, or it refused the request."""


class _Busy(AppError):
    status = 503


class _Unreachable(AppError):
    status = 502


def replica_token(secret: bytes) -> str:
    return hmac.new(secret, b"dcp-replica-relay-v1", hashlib.sha256).hexdigest()


class RemoteLink:
    """A provider's link held by another replica; relays as a link of this replica's own does."""

    def __init__(
        self, http: Http11Client, replica: str, provider_id: int, *, token: str, concurrency: int | None
    ) -> None:
        self.http, self.replica, self.provider_id = http, replica.rstrip("/"), provider_id
        self.token, self.concurrency = token, concurrency

    async def relay(
        self, *, job_id: str, method: str, path: str, body: str, content_type: str
    ) -> tuple[int, str, AsyncIterator[str]]:
        headers = [
            ("x-dcp-replica-token", self.token),
            ("x-dcp-provider", str(self.provider_id)),
            ("x-dcp-job", job_id),
            ("x-dcp-method", method),
            ("x-dcp-path", path),
        ]
        if self.concurrency is not None:
            headers.append(("x-dcp-concurrency", str(self.concurrency)))
        request = self.http.request(
            "POST",
            self.replica + INTERNAL_PATH,
            body=body.encode(),
            content_type=content_type,
            headers=headers,
        )
        held = AsyncExitStack()  # the answer's connection, until its body is read or abandoned
        try:
            answer = await held.enter_async_context(request)
            status = answer.headers.get("x-dcp-status", "")
            if not status.isdigit():  # the replica's own refusal, not the engine's answer
                raise RelayError(f"the provider's replica refused: {await _reason(answer)}"[:300])
        except Http11Error as exc:
            await held.aclose()
            raise RelayError(f"the provider's replica is unreachable ({exc})") from exc
        except BaseException:
            await held.aclose()
            raise

        async def chunks() -> AsyncIterator[str]:
            try:
                async for text in answer.text:
                    yield text
            except Http11Error:
                return  # ended early, as a link that goes quiet: the caller sees an unfinished body
            finally:
                await held.aclose()

        return int(status), answer.headers.get("x-dcp-content-type", "application/json"), chunks()


async def _reason(answer: Answer) -> str:
    text = "".join([piece async for piece in answer.text])
    try:
        return str(json.loads(text).get("error", answer.status))
    except (ValueError, AttributeError):
        return str(answer.status)


def http_client() -> Http11Client:
    """The client a replica relays with: connections kept, a body silent for a minute ended. No cap on
    connections: routing already holds each provider to its declared concurrency."""
    return Http11Client(connect_seconds=5.0, read_seconds=_START_SECONDS)


@router.post(INTERNAL_PATH, include_in_schema=False)
async def relay_in(request: Request) -> Response:
    """Another replica's request for a provider whose link is here. Its headers are read directly (not
    declared): the route is internal, and FastAPI's parameter solving cost more than the rest of it."""
    app, headers = request.app, request.headers
    if not hmac.compare_digest(headers.get("x-dcp-replica-token", ""), app.state.links.token):
        raise Forbidden("Only DCP replicas may relay requests")
    provider, job, path = (
        headers.get("x-dcp-provider", ""),
        headers.get("x-dcp-job"),
        headers.get("x-dcp-path"),
    )
    concurrency = headers.get("x-dcp-concurrency", "")
    if not provider.isdigit() or not job or not path or (concurrency and not concurrency.isdigit()):
        raise BadRequest("A relayed request names its provider, job and path")
    provider_id, limit = int(provider), int(concurrency) if concurrency else None
    link = app.state.links.get(provider_id)
    if link is None:
        raise NotFound("The provider's link is not on this replica")
    app.state.gateway.metrics.relayed.labels("in").inc()
    # A /v1 request counts against the provider's concurrency here too, with this replica's own requests.
    routing = app.state.gateway.router
    if limit is not None and not routing.choose([Candidate(provider_id, limit)], affinity="", exclude=set()):
        raise _Busy("The provider is busy")
    # A /v1 request waits here no longer than the replica that took it waits for its first token, so that a
    # silent provider's slot is not held after that replica gave up.
    first_token = app.state.settings.gateway.first_token_timeout_seconds if limit is not None else None
    try:
        async with asyncio.timeout(first_token):
            status, media_type, chunks = await link.relay(
                job_id=job,
                method=headers.get("x-dcp-method", "POST"),
                path=path,
                body=(await request.body()).decode(errors="replace"),
                content_type=headers.get("content-type", "application/json"),
            )
    except (RelayError, TimeoutError) as exc:
        if limit is not None:
            routing.release(provider_id, ok=False)
        raise _Unreachable(str(exc) or "the provider did not answer in time") from exc
    answered = {"x-dcp-status": str(status), "x-dcp-content-type": media_type}

    async def passed_on() -> AsyncIterator[str]:
        try:
            async for text in chunks:
                yield text
        finally:
            if limit is not None:
                routing.release(provider_id, ok=status < 500 and status != 429)

    if media_type.startswith("text/event-stream"):
        return StreamingResponse(passed_on(), media_type=media_type, headers=answered)
    # Anything else is one short answer: sent whole, without a streaming response's task group.
    return Response("".join([text async for text in passed_on()]), media_type=media_type, headers=answered)
