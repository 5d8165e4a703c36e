"""Per-process allowances: a /v1 request reserves its worst case from its renter's allowance in memory; the
allowance is one ledger hold (``billing.allowances``), taken or topped up only when it is short, renewed while
in use, and handed back when idle and at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

from dcp.billing import allowances
from dcp.billing.errors import InsufficientFunds
from dcp.config import GatewaySettings
from dcp.db.engine import Database

log = logging.getLogger("dcp.gateway")


@dataclass
class Allowance:
    """One renter's allowance in this process. ``free`` is what its holds took less what requests reserved
    and what finished requests cost (settled or not yet)."""

    renter_id: int
    id: int | None = None  # None: none is open
    ref: str = ""
    free: int = 0
    in_flight: int = 0  # requests holding a reservation
    unsettled: int = 0  # finished requests whose settlement is not committed yet
    used_at: float = 0.0  # time.monotonic()
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def fits(self, amount: int) -> bool:
        return self.id is not None and self.free >= amount

    def idle_since(self, moment: float) -> bool:
        return self.id is not None and not self.in_flight and not self.unsettled and self.used_at <= moment


@dataclass
class Reservation:
    allowance: Allowance
    allowance_id: int
    amount: int


class Allowances:
    """The allowances of one server process, per renter."""

    def __init__(self, db: Database, limits: GatewaySettings, now: Callable[[], datetime]) -> None:
        self._db, self._limits, self._now = db, limits, now
        self.process = uuid.uuid4().hex[:16]
        self._by_renter: dict[int, Allowance] = {}
        self._opened = 0
        self._keeper: asyncio.Task[None] | None = None

    async def reserve(self, renter_id: int, amount: int) -> Reservation:
        """Set ``amount`` aside for one request, topping the allowance up first if it is short (a write);
        InsufficientFunds (402) when the renter's money cannot cover it."""
        allowance = self._by_renter.get(renter_id)
        if allowance is None:
            allowance = self._by_renter[renter_id] = Allowance(renter_id)
        while not allowance.fits(amount):
            async with allowance.lock:
                if not allowance.fits(amount):
                    await self._top_up_for(allowance, amount)
        allowance.free -= amount  # fits() said the allowance is open, and nothing ran since
        allowance.in_flight += 1
        allowance.used_at = time.monotonic()
        return Reservation(allowance, cast(int, allowance.id), amount)

    def finished(self, reservation: Reservation, *, cost: int) -> None:
        """The request is done and costs ``cost`` (at most what it reserved); its settlement is queued."""
        allowance = reservation.allowance
        allowance.in_flight -= 1
        allowance.used_at = time.monotonic()
        if allowance.id == reservation.allowance_id:  # not closed and replaced meanwhile
            allowance.free += reservation.amount - cost
        if cost:
            allowance.unsettled += 1

    def settled(self, reservation: Reservation) -> None:
        """The request's settlement was written (or failed: the allowance then keeps its cost, and its
        renter gets it back when the allowance is closed)."""
        reservation.allowance.unsettled -= 1

    async def _top_up_for(self, allowance: Allowance, amount: int) -> None:
        have = allowance.free if allowance.id is not None else 0
        try:
            await self._top_up(allowance, amount - have)
        except InsufficientFunds as short:
            # Said as the renter sees it: the request's worst case, and all they have that could cover it.
            available = int(short.extra["available_halala"]) + have
            raise InsufficientFunds(account=short.account, needed=amount, available=available) from None

    async def _top_up(self, allowance: Allowance, need: int) -> None:
        for _ in range(2):  # a second time only if the allowance was closed by the sweeper meanwhile
            if allowance.id is None:
                self._opened += 1
                allowance.ref = allowances.reference(
                    process=self.process, renter_id=allowance.renter_id, number=self._opened
                )
            try:
                async with self._db.writer() as session:
                    taken = await allowances.take(
                        session,
                        renter_id=allowance.renter_id,
                        allowance_id=allowance.id,
                        ref=allowance.ref,
                        process=self.process,
                        need=need,
                        chunk=self._limits.allowance_halala,
                        now=self._now(),
                    )
                    await session.commit()
            except allowances.AllowanceClosed:
                allowance.id, allowance.free = None, 0
                continue
            allowance.id = taken.allowance_id
            allowance.free += taken.amount
            self._start_keeper()
            return

    def _start_keeper(self) -> None:
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep())

    async def _keep(self) -> None:
        """Hand back idle allowances and renew the others, until none is open."""
        limits = self._limits
        tick = max(0.05, min(limits.allowance_idle_seconds, limits.allowance_renew_seconds) / 2)
        renewed = time.monotonic()
        while any(allowance.id is not None for allowance in self._by_renter.values()):
            await asyncio.sleep(tick)
            try:
                await self.hand_back(idle_seconds=limits.allowance_idle_seconds)
                if time.monotonic() - renewed >= limits.allowance_renew_seconds:
                    await self._renew()
                    renewed = time.monotonic()
            except Exception:
                log.exception("allowance upkeep failed; retrying")

    async def hand_back(self, *, idle_seconds: float = 0.0, reason: str = "idle") -> int:
        """Close the allowances with nothing in flight or unsettled, unused for ``idle_seconds``, and
        release what they did not spend. Returns the halala released."""
        moment = time.monotonic() - idle_seconds
        # An allowance whose lock is taken is being topped up, for a request that is about to use it.
        closing = [a for a in self._by_renter.values() if a.idle_since(moment) and not a.lock.locked()]
        if not closing:
            return 0
        ids: list[int] = []
        for allowance in closing:  # from now on a request for this renter opens a new allowance
            ids.append(cast(int, allowance.id))
            allowance.id, allowance.free = None, 0
            del self._by_renter[allowance.renter_id]
        async with self._db.writer() as session:
            released = await allowances.close(session, ids, now=self._now(), reason=reason)
            await session.commit()
        return released

    async def _renew(self) -> None:
        ids = [a.id for a in self._by_renter.values() if a.id is not None]
        if not ids:
            return
        async with self._db.writer() as session:
            still_open = await allowances.renew(session, ids, now=self._now())
            await session.commit()
        for allowance in self._by_renter.values():
            if allowance.id is not None and allowance.id not in still_open:
                log.warning("allowance %s was closed by the sweeper; opening a new one", allowance.ref)
                allowance.id, allowance.free = None, 0

    async def aclose(self) -> int:
        """At shutdown, once settlements are written: hand back every allowance that nothing still uses."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
        return await self.hand_back(reason="shutdown")


async def release_stale(db: Database, *, limits: GatewaySettings, now: datetime, batch: int = 200) -> int:
    """The sweeper's part: close the allowances that their process stopped renewing (it died or stalled)
    for ``allowance_expiry_seconds`` and give back what they did not spend. Returns how many it closed."""
    before = now - timedelta(seconds=limits.allowance_expiry_seconds)
    async with db.reader() as session:
        found = await allowances.stale(session, before=before, limit=batch)
    if not found:
        return 0
    async with db.writer() as session:
        released = await allowances.close(session, found, now=now, reason="expired: its process stopped")
        await session.commit()
    log.warning(
        "closed %d allowances whose process stopped renewing them (%d halala back)", len(found), released
    )
    return len(found)
