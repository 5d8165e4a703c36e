"""Group commit: writes that arrive together share one write transaction (/v1 ledger writes, heartbeats)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from dcp.db.engine import Database

log = logging.getLogger("dcp.db")
Item = TypeVar("Item")
# Writes a batch in the session's transaction: per item None, or the error that item alone must raise.
# An exception means the batch as a whole cannot be committed.
Work = Callable[[AsyncSession, list[Item]], Awaitable[list[Exception | None]]]


class GroupCommit(Generic[Item]):
    """Each request keeps its own rows and still waits until they are committed; what is shared is the
    transaction, and the statements (one per table, one balance update per account for the batch). One
    writer task runs while there is work and takes everything that queued up meanwhile: under load a batch
    holds the requests that arrived during the previous one, and alone a request is written at once (or,
    with ``gather_seconds``, after waiting a moment for others)."""

    def __init__(
        self,
        db: Database,
        work: Work[Item],
        *,
        max_batch: int,
        name: str,
        gather_seconds: float = 0.0,
        gather_until: int = 32,
    ) -> None:
        self._db, self._work, self._max_batch, self._name = db, work, max_batch, name
        self._gather_seconds, self._gather_until = gather_seconds, gather_until
        self._queue: list[tuple[Item, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None
        self._arrived: asyncio.Event | None = None  # set by each item queued while the writer gathers

    async def write(self, item: Item) -> None:
        """Return once ``item`` is committed; raise what writing it raised. A caller that is cancelled
        meanwhile (its client left) does not take its write with it: only its future is cancelled, and the
        item stays queued (cheaper than shielding the future, which every heartbeat paid)."""
        await self.submit(item)

    def submit(self, item: Item) -> asyncio.Future[None]:
        """Queue ``item`` without waiting; the future tells when it is committed, or why it was not."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieved)
        self._queue.append((item, future))
        if self._arrived is not None:
            self._arrived.set()
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain())
        return future

    async def flush(self) -> None:
        """Return once everything queued before (and while) waiting is written."""
        while self._writer is not None and not self._writer.done():
            with contextlib.suppress(Exception):  # each item's future carries its own failure
                await asyncio.shield(self._writer)

    async def _drain(self) -> None:
        while self._queue:
            await self._gather()
            batch, self._queue = self._queue[: self._max_batch], self._queue[self._max_batch :]
            try:
                await self._write(batch)
            finally:
                for _, future in batch:
                    if not future.done():  # the writer itself was cancelled (the loop is closing)
                        future.set_exception(RuntimeError(f"the {self._name} writer stopped"))

    async def _gather(self) -> None:
        """With ``gather_seconds``, a small batch waits for company, as a transaction can cost more than the
        items in it: until ``gather_until`` items are queued, ``gather_seconds`` have passed, or none came for
        a fifth of that (the callers there are, such as a closed loop's, have all arrived)."""
        if self._gather_seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._gather_seconds
        while len(self._queue) < self._gather_until and (left := deadline - loop.time()) > 0:
            self._arrived = asyncio.Event()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(left, self._gather_seconds / 5))
            except TimeoutError:
                return
            finally:
                self._arrived = None

    async def _write(self, batch: list[tuple[Item, asyncio.Future[None]]]) -> None:
        try:
            problems = await self._commit([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                _resolve(batch[0][1], exc)
                return
            # One item that cannot be written must not fail the others: each on its own now. Rare in
            # operation (on PostgreSQL, money another server spent meanwhile); a warning, as batches that
            # failed every time would show only as each write costing a transaction of its own.
            log.warning("a batch of %d %s failed (%s); writing them one by one", len(batch), self._name, exc)
            for item, future in batch:
                try:
                    [problem] = await self._commit([item])
                except Exception as alone:
                    problem = alone
                _resolve(future, problem)
            return
        for (_, future), problem in zip(batch, problems, strict=True):
            _resolve(future, problem)

    async def _commit(self, items: list[Item]) -> list[Exception | None]:
        async with self._db.writer() as session:
            problems = await self._work(session, items)
            await session.commit()
        return problems


def _resolve(future: asyncio.Future[None], problem: Exception | None) -> None:
    if future.cancelled():  # its caller left; the item was written (or failed) all the same
        return
    if problem is None:
        future.set_result(None)
    else:
        future.set_exception(problem)


def _retrieved(future: asyncio.Future[None]) -> None:
    # Mark the outcome seen, so that one whose request went away is not reported as never retrieved.
    if not future.cancelled():
        future.exception()
