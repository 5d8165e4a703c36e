"""One queue check per server process for all of its idle provider links, instead of one claim per link."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sqlalchemy import func, select

from dcp.db.engine import Database
from dcp.jobs.events import EventHub
from dcp.models import Job

log = logging.getLogger("dcp.link")
INTERVAL_SECONDS = 5.0
_SPARE_WAKEUPS = 4  # links woken beyond the shared queue's length, for those that cannot take its jobs


class QueueWatcher:
    """Every few seconds, reads which pending jobs wait and wakes only the links that may claim them.

    A submit on this process wakes its links at once; this catches jobs placed by other replicas, requeued
    by a sweeper elsewhere, or missed. Each idle link used to claim on its own 5 s timer, a write
    transaction each: 1,000 idle links took 38% of a core (bench heartbeat), so 10,000 would not fit on one.
    """

    def __init__(self, db: Database, hub: EventHub, connected: Callable[[], list[int]]) -> None:
        self.db, self.hub, self.connected = db, hub, connected
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._turn = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        self._stopping.set()  # not cancelled: a cancel inside a database call would leave it half reset

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=INTERVAL_SECONDS)
            if self._stopping.is_set():
                return
            try:
                await self.check()
            except Exception as exc:  # the database may be restarting: the next round tries again
                log.warning("checking the queue for idle links failed: %s", exc)

    async def check(self) -> None:
        async with self.db.reader() as session:
            placed = (
                await session.execute(
                    select(Job.provider_id)
                    .where(Job.status == "pending", Job.provider_id.is_not(None))
                    .distinct()
                )
            ).scalars()
            waiting = set(placed)
            shared = (
                await session.execute(
                    select(func.count(Job.id)).where(
                        Job.status == "pending",
                        Job.provider_id.is_(None),
                        Job.requested_provider_id.is_(None),
                    )
                )
            ).scalar_one()
        here = sorted(self.connected())
        for provider_id in here:
            if provider_id in waiting:
                self.hub.nudge_here(provider_id)
        if shared and here:
            for n in range(
                min(len(here), shared + _SPARE_WAKEUPS)
            ):  # in turns, so every link gets its chance
                self.hub.nudge_here(here[(self._turn + n) % len(here)])
            self._turn += shared + _SPARE_WAKEUPS
