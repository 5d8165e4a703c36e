"""Signals: live job events for SSE followers, and nudges that wake provider links. Handed out in this
process, and to the other replicas through ``share`` when they have a bus (``jobs/event_bus.py``).

Nothing here must survive a restart: job state lives in the database, a follower re-reads it when it
reconnects, and every provider link also re-checks the queue on a timer.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

_QUEUE_LIMIT = 1000
# The last event a follower gets when the server stops: its stream ends (``EventHub.end_streams``).
SERVER_STOPPING = {"type": "server_stopping"}


class EventHub:
    def __init__(self) -> None:
        self._followers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._wakeups: dict[int, set[asyncio.Event]] = defaultdict(set)
        self.share: Callable[[dict[str, Any]], None] | None = None  # to the other replicas
        self._stopping = False

    def publish(self, job_id: str, event: dict[str, Any]) -> None:
        self.publish_here(job_id, event)
        if self.share is not None:
            self.share({"kind": "event", "job_id": job_id, "event": event})

    def publish_here(self, job_id: str, event: dict[str, Any]) -> None:
        for queue in self._followers.get(job_id, ()):
            # A follower that stopped reading loses events (tokens, logs), not memory; but never a status
            # (a handful per job): its stream ends on the last one.
            if queue.qsize() < _QUEUE_LIMIT or event["type"] == "status":
                queue.put_nowait(event)

    def end_streams(self) -> None:
        """The server is stopping: every follower, and any that starts from now on, gets
        ``SERVER_STOPPING`` after what its queue already holds."""
        self._stopping = True
        for queues in self._followers.values():
            for queue in queues:
                queue.put_nowait(SERVER_STOPPING)

    @asynccontextmanager
    async def follow(self, job_id: str) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        if self._stopping:
            queue.put_nowait(SERVER_STOPPING)
        self._followers[job_id].add(queue)
        try:
            yield queue
        finally:
            self._followers[job_id].discard(queue)
            if not self._followers[job_id]:
                del self._followers[job_id]

    def nudge(self, provider_id: int | None = None) -> None:
        """Wake one provider's links (a job was placed on it) or all of them (shared queue)."""
        self.nudge_here(provider_id)
        if self.share is not None:
            self.share({"kind": "nudge", "provider_id": provider_id})

    def nudge_here(self, provider_id: int | None = None) -> None:
        targets = self._wakeups.values() if provider_id is None else [self._wakeups.get(provider_id, set())]
        for events in targets:
            for event in events:
                event.set()

    # An endpoint's BackgroundTasks run after its response, once its unit of work is committed; a plain
    # function there runs on a worker thread, where asyncio's queues and events must not be touched. These
    # run in the event loop.
    async def publish_later(self, job_id: str, event: dict[str, Any]) -> None:
        self.publish(job_id, event)

    async def nudge_later(self, provider_id: int | None = None) -> None:
        self.nudge(provider_id)

    @asynccontextmanager
    async def wakeup(self, provider_id: int) -> AsyncIterator[asyncio.Event]:
        event = asyncio.Event()
        self._wakeups[provider_id].add(event)
        try:
            yield event
        finally:
            self._wakeups[provider_id].discard(event)
            if not self._wakeups[provider_id]:
                del self._wakeups[provider_id]
