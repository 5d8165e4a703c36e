"""What one replica's EventHub hands out, shared with the other replicas through Redis pub/sub (when
``DCP_REDIS_URL`` is set): job events for SSE followers, and nudges that wake provider links.

So a renter following a job on one replica sees the tokens its daemon reports to another, and a job submitted
on one replica reaches a daemon linked to another at once, not at that replica's next look at the queue (up to
5 s later). Delivery is best effort, as within one process: a follower that reconnects re-reads the job, and
every link re-checks the queue on its own timer; while Redis is away each replica goes on serving its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from typing import Any

import redis.asyncio as redis
from redis.exceptions import RedisError

from dcp.jobs.events import EventHub
from dcp.kit.limits import RedisOutage

CHANNEL = "dcp:hub"
_OUTBOX_LIMIT = 10_000  # messages waiting for Redis; past it new ones are dropped, not memory
_RETRY_SECONDS = 1.0
_SEND_SECONDS = 5.0

log = logging.getLogger("dcp.events")


class RedisBus:
    def __init__(self, url: str, hub: EventHub) -> None:
        self.hub = hub
        self.origin = secrets.token_hex(8)  # this process: what it published comes back to it too
        self._redis = redis.from_url(url, socket_connect_timeout=1.0)  # no read timeout: it listens
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.subscribed = asyncio.Event()
        self._outage = RedisOutage("job events and wakeups stay within each replica")

    def start(self) -> None:
        self.hub.share = self._share
        self._tasks = [asyncio.create_task(self._send()), asyncio.create_task(self._receive())]

    async def aclose(self) -> None:
        self.hub.share = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._redis.aclose()

    def _share(self, message: dict[str, Any]) -> None:
        if self._outbox.qsize() < _OUTBOX_LIMIT:
            self._outbox.put_nowait(json.dumps({**message, "origin": self.origin}, ensure_ascii=False))

    async def _send(self) -> None:
        """Publishes in order, all that waits in one round trip."""
        while True:
            batch = [await self._outbox.get()]
            while not self._outbox.empty():
                batch.append(self._outbox.get_nowait())
            try:
                # The client has no read timeout (the listener waits for messages as long as it takes), so a
                # Redis that stops answering mid-call is given up on here.
                async with asyncio.timeout(_SEND_SECONDS), self._redis.pipeline(transaction=False) as pipe:
                    for message in batch:
                        pipe.publish(CHANNEL, message)
                    await pipe.execute()
            except (RedisError, OSError, TimeoutError) as exc:  # lost: best effort, as within one process
                self._outage.failed(exc)
                await asyncio.sleep(_RETRY_SECONDS)
            else:
                self._outage.answered()

    async def _receive(self) -> None:
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.subscribed.set()
                    self._outage.answered()
                    async for message in pubsub.listen():
                        self._deliver(message["data"])
            except (RedisError, OSError) as exc:
                self.subscribed.clear()
                self._outage.failed(exc)
                await asyncio.sleep(_RETRY_SECONDS)

    def _deliver(self, data: bytes) -> None:
        try:
            message = json.loads(data)
            if message["origin"] == self.origin:
                return
            if message["kind"] == "event":
                self.hub.publish_here(str(message["job_id"]), dict(message["event"]))
            elif message["kind"] == "nudge":
                provider_id = message["provider_id"]
                self.hub.nudge_here(None if provider_id is None else int(provider_id))
        except (ValueError, KeyError, TypeError) as exc:  # not from a DCP replica of this version
            log.warning("ignored a malformed message on %s: %s", CHANNEL, exc)
