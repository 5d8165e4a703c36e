"""The provider link: one outbound WebSocket per daemon; jobs are pushed over it the moment they are placed.

Protocol ``dcp-link/1``, JSON text frames. The daemon connects to ``/api/providers/link`` with its key
(header ``x-provider-key``) and the protocol it speaks (header ``x-dcp-protocol`` or ``?protocol=``). The
server says ``hello``; then it sends ``job`` (a signed task spec, already leased to this provider) and
``stop`` (a job it holds was cancelled or reassigned); the daemon may send ``heartbeat`` (the HTTP
heartbeat's body) and ``ready`` (it has a free slot). Results and progress go over HTTP with the lease
token, where retries are simple.

The link also carries ``vllm_serve`` endpoint traffic, so a renter never needs the provider's address:
the server sends ``http`` (a request for a job's local endpoint) and the daemon answers ``http_start``
(status, content type), ``http_chunk`` frames and ``http_end`` (or ``http_error``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError
from sqlalchemy import select, update

from dcp.auth import key_holder
from dcp.config import Settings
from dcp.db.engine import Database
from dcp.jobs import dispatch
from dcp.jobs.events import EventHub
from dcp.jobs.queue_watch import QueueWatcher
from dcp.jobs.relay import RelayError, RemoteLink, http_client, replica_token
from dcp.key_cache import KeyCache, KeyHolder
from dcp.kit import keys
from dcp.kit.clock import Clock
from dcp.kit.http11 import Http11Client
from dcp.models import Job, Provider
from dcp.providers.heartbeats import HeartbeatWriter, ProviderGone
from dcp.providers.schemas import Heartbeat

PROTOCOL = "dcp-link/1"
_RECHECK_SECONDS = 5.0
_IDLE_RECHECK_SECONDS = 60.0
_MAX_BAD_MESSAGES = 5
_MAX_MESSAGE_BYTES = 256 * 1024
_MIN_HEARTBEAT_GAP_SECONDS = 1.0  # daemons beat every 30 s; faster is a flood, refused before the database

router = APIRouter()
log = logging.getLogger("dcp.link")
_RELAY_START_SECONDS = 60.0


class LinkRegistry:
    """The provider links connected to this server process (a provider's link lands on one replica), the
    one queue watcher that wakes them while any is connected, and the way to the links other replicas hold
    (``relay``)."""

    def __init__(self, *, replica_url: str = "", secret: bytes = b"") -> None:
        self.replica_url = replica_url.rstrip("/")
        self.token = replica_token(secret)  # what this replica and its peers show each other
        self._links: dict[int, _Link] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._watcher: QueueWatcher | None = None
        self._http: Http11Client | None = None  # for other replicas, made when first needed

    def add(self, link: _Link) -> None:
        """One link per provider: a newer one (its daemon reconnected, or a second daemon uses its key)
        replaces the one before, which is closed, so that no link is left taking jobs unseen."""
        if (before := self._links.get(link.provider_id)) is not None:
            closing = asyncio.create_task(before.close(4409, "another link opened with this provider's key"))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)
        self._links[link.provider_id] = link
        if self._watcher is None:
            self._watcher = QueueWatcher(link.db, link.hub, lambda: list(self._links))
            self._watcher.start()

    def remove(self, link: _Link) -> None:
        if self._links.get(link.provider_id) is link:
            del self._links[link.provider_id]
        if not self._links and self._watcher is not None:
            self._watcher.stop()
            self._watcher = None

    def get(self, provider_id: int) -> _Link | None:
        return self._links.get(provider_id)

    def reachable(self, provider_id: int, replica: str | None) -> bool:
        """Whether ``reach`` finds a way to the provider, whose link ``replica`` recorded."""
        return provider_id in self._links or self._elsewhere(replica)

    def reach(
        self, provider_id: int, replica: str | None, *, concurrency: int | None = None
    ) -> _Link | RemoteLink | None:
        """The provider's link if it is here, else the way to it through ``replica``; None when neither."""
        if (link := self._links.get(provider_id)) is not None:
            return link
        if replica is None or not self._elsewhere(replica):
            return None
        if self._http is None:
            self._http = http_client()
        return RemoteLink(self._http, replica, provider_id, token=self.token, concurrency=concurrency)

    def _elsewhere(self, replica: str | None) -> bool:
        # A link this replica recorded but no longer holds has closed: its provider is not reachable.
        return bool(replica) and replica != self.replica_url

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


@router.websocket("/providers/link")
async def provider_link(websocket: WebSocket) -> None:
    app = websocket.app
    settings: Settings = app.state.settings
    db: Database = app.state.db
    holder = await _authenticate(websocket, db, settings)
    if holder is None:
        return
    provider, key_digest = holder
    protocol = websocket.headers.get("x-dcp-protocol") or websocket.query_params.get("protocol") or PROTOCOL
    if protocol != PROTOCOL:
        await websocket.close(
            code=4400, reason=f"unsupported protocol {protocol[:40]}; this server speaks {PROTOCOL}"
        )
        return
    await websocket.accept()
    link = _Link(
        websocket,
        provider,
        key_digest=key_digest,
        db=db,
        settings=settings,
        clock=app.state.clock,
        hub=app.state.hub,
    )
    registry: LinkRegistry = app.state.links
    registry.add(link)
    try:
        await _present(db, provider.id, link.link_id, lost_at=None, replica=registry.replica_url)
        await link.run()
    finally:
        registry.remove(link)
        # Offline at once, not once its latest heartbeat is old: placement stops choosing it and the sweeper
        # hands the jobs waiting in its queue to others. Only this link's own mark: the daemon may already
        # hold a new link, here or on another replica.
        try:
            await _present(db, provider.id, link.link_id, lost_at=app.state.clock.now())
        except Exception:  # the database is away: the heartbeat threshold still takes it offline
            log.warning("could not record that provider %s's link closed", provider.id, exc_info=True)


async def _present(
    db: Database, provider_id: int, link_id: str, *, lost_at: datetime | None, replica: str = ""
) -> None:
    """Record a link that opened here (``lost_at`` None; ``replica``: this replica's address) or that
    closed at ``lost_at``."""
    if lost_at is None:
        held = {"link_id": link_id, "link_lost_at": None, "link_replica": replica or None}
        change = update(Provider).where(Provider.id == provider_id).values(**held)
    else:
        change = (
            update(Provider)
            .where(Provider.id == provider_id, Provider.link_id == link_id)
            .values(link_lost_at=lost_at)
        )
    async with db.writer() as session:
        await session.execute(change)
        await session.commit()


async def _authenticate(
    websocket: WebSocket, db: Database, settings: Settings
) -> tuple[KeyHolder, str] | None:
    """The key's holder and the key's digest; None once the link is refused."""
    key = websocket.headers.get("x-provider-key") or websocket.query_params.get("key") or ""
    if keys.key_role(key) is not keys.Role.provider:
        await websocket.close(code=4401, reason="a provider key is required")
        return None
    digest = keys.digest(key, secret=settings.secret_bytes)
    cache: KeyCache = websocket.app.state.key_cache
    provider = await key_holder(db, cache, role=keys.Role.provider, digest=digest)
    if provider is None:
        await websocket.close(code=4401, reason="invalid or revoked key")
        return None
    return provider, digest


class _Link:
    def __init__(
        self,
        websocket: WebSocket,
        provider: KeyHolder,
        *,
        key_digest: str,
        db: Database,
        settings: Settings,
        clock: Clock,
        hub: EventHub,
    ) -> None:
        self.websocket, self.provider_id = websocket, provider.id
        self.key_digest = key_digest  # a link lives only as long as the key it opened with
        self.link_id = uuid.uuid4().hex
        self.db, self.settings, self.clock, self.hub = db, settings, clock, hub
        self.sent: set[str] = set()  # jobs pushed over this link and not yet known to have ended
        self.bad_messages = 0
        self.last_heartbeat = -_MIN_HEARTBEAT_GAP_SECONDS
        self.relays: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        self._relay_ids = itertools.count(1)  # a relayed request's frames carry its id, unique on this link
        self.heartbeats: set[asyncio.Task[None]] = set()  # being written
        self.closing = False
        self._send_lock = asyncio.Lock()

    async def run(self) -> None:
        await self._send(
            {
                "type": "hello",
                "protocol": PROTOCOL,
                "provider_id": self.provider_id,
                "lease_seconds": self.settings.jobs.lease_seconds,
            }
        )
        async with self.hub.wakeup(self.provider_id) as woken:
            pusher = asyncio.create_task(self._push_loop(woken))
            try:
                await self._receive_loop(woken)
            except WebSocketDisconnect:
                pass
            except RuntimeError:  # reading a link this side closed (a rotated key, a newer link)
                if not self.closing:
                    raise
            finally:
                # Stopped, not cancelled: a cancel landing inside a database call would leave its
                # connection half reset. The loop notices at its next wait and exits.
                self.closing = True
                woken.set()
                with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                    await pusher
                for queue in self.relays.values():  # requests in flight fail over at once
                    queue.put_nowait({"type": "http_error", "error": "the provider disconnected"})
                if self.heartbeats:  # what the provider reported still counts
                    await asyncio.wait(set(self.heartbeats))

    async def _push_loop(self, woken: asyncio.Event) -> None:
        await self._resend_unstarted()
        while not self.closing:
            woken.clear()
            await self._push_jobs()
            await self._stop_lost_jobs()
            # A link with jobs out re-checks them on its own timer; an idle one is woken by a submit here or
            # by the queue watcher, and re-checks by itself only now and then.
            recheck = _RECHECK_SECONDS if self.sent else _IDLE_RECHECK_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), timeout=recheck)

    async def _resend_unstarted(self) -> None:
        """Jobs leased to this provider and not started yet go again: a link that dropped as one was pushed
        (the daemon never saw it) would otherwise leave the job waiting out its lease, and then hand it to
        another provider. A daemon that did get it ignores the second copy."""
        async with self.db.reader() as session:
            provider = await session.get(Provider, self.provider_id)
            if provider is None or provider.key_digest != self.key_digest:
                await self._close_revoked()
                return
            found = await session.execute(
                select(Job).where(
                    Job.provider_id == self.provider_id,
                    Job.status == "assigned",
                    Job.lease_expires_at > self.clock.now(),
                )
            )
            tasks = [(job.job_id, dispatch.signed_task(job, provider)) for job in found.scalars()]
        for job_id, task in tasks:
            self.sent.add(job_id)
            await self._send({"type": "job", "task": task})

    async def _push_jobs(self) -> None:
        while not self.closing:
            async with self.db.writer() as session:
                provider = await session.get(Provider, self.provider_id)
                if provider is None or provider.key_digest != self.key_digest:
                    await self._close_revoked()
                    return
                if provider.link_id != self.link_id:  # a newer link, on another replica, replaced this one
                    await self.close(4409, "another link opened with this provider's key")
                    return
                job = await dispatch.claim_next(
                    session, provider=provider, now=self.clock.now(), settings=self.settings
                )
                task = dispatch.signed_task(job, provider) if job else None
                await session.commit()
            if job is None or task is None:
                return
            self.sent.add(job.job_id)
            await self._send({"type": "job", "task": task})

    async def _close_revoked(self) -> None:
        """The key this link opened with was rotated or revoked: whoever holds it gets nothing more."""
        await self.close(4401, "the provider key was rotated or revoked")

    async def close(self, code: int, reason: str) -> None:
        self.closing = True
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the link closed meanwhile
            await self.websocket.close(code=code, reason=reason)

    async def _stop_lost_jobs(self) -> None:
        if not self.sent:
            return
        async with self.db.reader() as session:
            rows = await session.execute(
                select(Job.job_id, Job.status, Job.provider_id).where(Job.job_id.in_(self.sent))
            )
            for job_id, status, provider_id in rows:
                if status in ("assigned", "running") and provider_id == self.provider_id:
                    continue
                self.sent.discard(job_id)
                if status != "completed":
                    await self._send({"type": "stop", "job_id": job_id, "status": status})

    async def _receive_loop(self, woken: asyncio.Event) -> None:
        while True:
            text = await self.websocket.receive_text()
            message = self._parse(text)
            if message is not None:
                await self._handle(message, woken)
            if self.bad_messages >= _MAX_BAD_MESSAGES:  # malformed, invalid or flooding: cut the link
                await self.websocket.close(code=1008, reason="too many bad messages")
                return

    async def _handle(self, message: dict[str, Any], woken: asyncio.Event) -> None:
        kind = message.get("type")
        if kind == "heartbeat":
            await self._heartbeat(message)
        elif kind == "ready":
            woken.set()
        elif kind in ("http_start", "http_chunk", "http_end", "http_error"):
            if queue := self.relays.get(str(message.get("id"))):
                queue.put_nowait(message)
                # Let the waiting request pass the frame on before the next buffered one is read: a stream's
                # first token otherwise waited while the rest of its frames were parsed.
                await asyncio.sleep(0)
        else:
            await self._reject(f"unknown message type {str(kind)[:40]!r}")

    def _parse(self, text: str) -> dict[str, Any] | None:
        if len(text) > _MAX_MESSAGE_BYTES:
            self.bad_messages += 1
            return None
        try:
            message = json.loads(text)
        except ValueError:
            self.bad_messages += 1
            return None
        if not isinstance(message, dict):
            self.bad_messages += 1
            return None
        return message

    async def _heartbeat(self, message: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self.last_heartbeat < _MIN_HEARTBEAT_GAP_SECONDS:
            await self._reject("heartbeats come at most once a second")
            return
        self.last_heartbeat = now
        try:
            beat = Heartbeat.model_validate(message.get("body") or {})
        except ValidationError:
            await self._reject("invalid heartbeat")
            return
        # Written apart from this loop: a heartbeat's batch may wait for company, and frames relayed for /v1
        # requests must not wait behind it.
        task = asyncio.create_task(self._record_heartbeat(beat, now=self.clock.now()))
        self.heartbeats.add(task)
        task.add_done_callback(self.heartbeats.discard)

    async def _record_heartbeat(self, beat: Heartbeat, *, now: datetime) -> None:
        writer: HeartbeatWriter = self.websocket.app.state.heartbeats
        try:
            answer = await writer.record(self.key_digest, beat, now=now)
        except ProviderGone:
            await self._close_revoked()
            return
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):  # the link closed meanwhile
            await self._send({"type": "heartbeat_ack", "body": answer.model_dump()})

    async def _reject(self, reason: str) -> None:
        self.bad_messages += 1
        await self._send({"type": "error", "error": reason})

    async def _send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            await self.websocket.send_text(json.dumps(message, ensure_ascii=False))

    async def relay(
        self, *, job_id: str, method: str, path: str, body: str, content_type: str
    ) -> tuple[int, str, AsyncIterator[str]]:
        """Send one HTTP request to the job's endpoint on the daemon; returns status, type and the body."""
        request_id = f"{next(self._relay_ids):x}"
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.relays[request_id] = queue
        try:
            await self._send(
                {
                    "type": "http",
                    "id": request_id,
                    "job_id": job_id,
                    "method": method,
                    "path": path,
                    "body": body,
                    "content_type": content_type,
                }
            )
            first = await _next_frame(queue)
        except (TimeoutError, WebSocketDisconnect, RuntimeError) as exc:
            self.relays.pop(request_id, None)
            raise RelayError("the provider did not answer") from exc
        except BaseException:  # the caller gave up (its own timeout, a client that left)
            self.relays.pop(request_id, None)
            raise
        if first.get("type") != "http_start":
            self.relays.pop(request_id, None)
            raise RelayError(str(first.get("error", "the provider refused the request"))[:300])

        async def chunks() -> AsyncIterator[str]:
            try:
                while True:
                    message = await _next_frame(queue)
                    if message.get("type") != "http_chunk":
                        return
                    yield str(message.get("data", ""))
            except TimeoutError:
                return
            finally:
                self.relays.pop(request_id, None)

        status = first.get("status", 502)
        if type(status) is not int or not 200 <= status <= 599:
            self.relays.pop(request_id, None)
            raise RelayError("the provider answered without a valid HTTP status")
        return status, str(first.get("content_type", "application/json")), chunks()


async def _next_frame(queue: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
    """A relayed request's next frame; TimeoutError when none came for ``_RELAY_START_SECONDS``. Not
    ``asyncio.wait_for``, which on Python 3.11 runs the wait as a task of its own, for every frame."""
    async with asyncio.timeout(_RELAY_START_SECONDS):
        return await queue.get()
