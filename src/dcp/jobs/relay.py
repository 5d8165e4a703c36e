"""Requests for a provider whose link landed on another replica: relayed to that replica over HTTP.

A daemon holds one link, to one replica. A replica started with ``DCP_REPLICA_URL`` records that address with
each link it accepts (``providers.link_replica``). Another replica with a /v1 or endpoint request for that
provider sends it to ``POST /api/internal/relay`` at that address, which puts it on the link and streams the
answer back: the engine's status and content type in ``x-dcp-status`` and ``x-dcp-content-type``, its body
as it comes. Replicas prove themselves to each other with a token derived from the ``DCP_SECRET_KEY`` they
share. The replica that received the request does the rest (routing, failover, billing) as for a link of
its own; the one holding the link also counts the request against the provider's declared concurrency."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse

from dcp.gateway.routing import Candidate
from dcp.kit.errors import AppError, BadRequest, Forbidden, NotFound

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
        self, http: httpx.AsyncClient, replica: str, provider_id: int, *, token: str, concurrency: int | None
    ) -> None:
        self.http, self.replica, self.provider_id = http, replica.rstrip("/"), provider_id
        self.token, self.concurrency = token, concurrency

    async def relay(
        self, *, job_id: str, method: str, path: str, body: str, content_type: str
    ) -> tuple[int, str, AsyncIterator[str]]:
        headers = {
            "x-dcp-replica-token": self.token,
            "x-dcp-provider": str(self.provider_id),
            "x-dcp-job": job_id,
            "x-dcp-method": method,
            "x-dcp-path": path,
            "content-type": content_type,
        }
        if self.concurrency is not None:
            headers["x-dcp-concurrency"] = str(self.concurrency)
        url = self.replica + INTERNAL_PATH
        request = self.http.build_request("POST", url, content=body.encode(), headers=headers)
        try:
            answer = await self.http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise RelayError(f"the provider's replica is unreachable ({type(exc).__name__})") from exc
        status = answer.headers.get("x-dcp-status", "")
        if not status.isdigit():  # the replica's own refusal, not the engine's answer
            try:
                await answer.aread()
                reason = str(answer.json().get("error", answer.status_code))
            except (httpx.HTTPError, ValueError, AttributeError):
                reason = str(answer.status_code)
            finally:
                await answer.aclose()
            raise RelayError(f"the provider's replica refused: {reason}"[:300])

        async def chunks() -> AsyncIterator[str]:
            try:
                async for text in answer.aiter_text():
                    yield text
            except httpx.HTTPError:
                return  # ended early, as a link that goes quiet: the caller sees an unfinished body
            finally:
                await answer.aclose()

        return int(status), answer.headers.get("x-dcp-content-type", "application/json"), chunks()


def http_client() -> httpx.AsyncClient:
    """The client a replica relays with: connections kept (no cap on their number: routing already holds
    each provider to its declared concurrency), a body silent for a minute ended."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(_START_SECONDS, connect=5.0),
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
    )


@router.post(INTERNAL_PATH, include_in_schema=False)
async def relay_in(
    request: Request,
    provider: Annotated[str, Header(alias="x-dcp-provider")] = "",
    job: Annotated[str, Header(alias="x-dcp-job")] = "",
    method: Annotated[str, Header(alias="x-dcp-method")] = "POST",
    path: Annotated[str, Header(alias="x-dcp-path")] = "",
    concurrency: Annotated[str, Header(alias="x-dcp-concurrency")] = "",
    token: Annotated[str, Header(alias="x-dcp-replica-token")] = "",
) -> StreamingResponse:
    """Another replica's request for a provider whose link is here."""
    app = request.app
    if not hmac.compare_digest(token, replica_token(app.state.settings.secret_bytes)):
        raise Forbidden("Only DCP replicas may relay requests")
    if not provider.isdigit() or not job or not path or (concurrency and not concurrency.isdigit()):
        raise BadRequest("A relayed request names its provider, job and path")
    provider_id, limit = int(provider), int(concurrency) if concurrency else None
    link = app.state.links.get(provider_id)
    if link is None:
        raise NotFound("The provider's link is not on this replica")
    # A /v1 request counts against the provider's concurrency here too, with this replica's own requests.
    routing = app.state.gateway.router
    if limit is not None and not routing.choose([Candidate(provider_id, limit)], affinity="", exclude=set()):
        raise _Busy("The provider is busy")
    body = (await request.body()).decode(errors="replace")
    content_type = request.headers.get("content-type", "application/json")
    try:
        status, media_type, chunks = await link.relay(
            job_id=job, method=method, path=path, body=body, content_type=content_type
        )
    except RelayError as exc:
        if limit is not None:
            routing.release(provider_id, ok=False)
        raise _Unreachable(str(exc)) from exc

    async def passed_on() -> AsyncIterator[str]:
        try:
            async for text in chunks:
                yield text
        finally:
            if limit is not None:
                routing.release(provider_id, ok=status < 500 and status != 429)

    headers = {"x-dcp-status": str(status), "x-dcp-content-type": media_type}
    return StreamingResponse(passed_on(), media_type=media_type, headers=headers)
