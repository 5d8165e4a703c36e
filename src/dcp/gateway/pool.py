"""The serving pool as the gateway sees it: which providers serve which models, online and ready now."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from dcp.config import Settings
from dcp.gateway.routing import Candidate
from dcp.jobs.placement import accepting
from dcp.models import Provider


async def serving(session: AsyncSession, *, settings: Settings, now: datetime) -> list[Provider]:
    found = await session.execute(
        select(Provider).where(*accepting(now=now, settings=settings), Provider.serving_ready.is_(True))
    )
    return list(found.scalars())


def models_of(providers: list[Provider]) -> dict[str, list[Provider]]:
    by_model: dict[str, list[Provider]] = {}
    for provider in providers:
        for model in provider.serving_models:
            by_model.setdefault(model, []).append(provider)
    return by_model


@dataclass
class PoolCache:
    """The pool per model, read at most every ``ttl_seconds`` per process, and read again in the background
    once half of that has passed, so that requests seldom wait for a read. A model missing from a cached
    pool is looked up again at once (so is one whose cached providers are all gone: ``reread``), so a
    provider that just joined is found; one that just left is still listed until the pool is read again,
    and the live checks (its link, its circuit) skip it meanwhile."""

    ttl_seconds: float
    _by_model: dict[str, list[Candidate]] = field(default_factory=dict)
    _read_at: float = float("-inf")  # time.monotonic()
    _read_for: datetime | None = None  # the request time it was read for (tests move their clock)
    _refreshing: bool = False

    def peek(self, model: str, *, now: datetime) -> list[Candidate] | None:
        """The cached servers of ``model`` while the pool is fresh; None when a read is needed."""
        if not self._fresh(now):
            return None
        return self._by_model.get(model) or None

    def refresh_due(self) -> bool:
        """Half the TTL has passed and no refresh is running: the caller starts one (``servers``)."""
        due = not self._refreshing and time.monotonic() - self._read_at >= self.ttl_seconds / 2
        self._refreshing = self._refreshing or due
        return due

    async def servers(
        self, session: AsyncSession, model: str, *, settings: Settings, now: datetime, reread: bool = False
    ) -> list[Candidate]:
        if not reread and (found := self.peek(model, now=now)):
            return found
        try:
            providers = await serving(session, settings=settings, now=now)
        finally:
            self._refreshing = False
        self._by_model = {
            name: [Candidate(p.id, p.serving_concurrency, p.link_replica) for p in group]
            for name, group in models_of(providers).items()
        }
        self._read_at, self._read_for = time.monotonic(), now
        return self._by_model.get(model, [])

    def _fresh(self, now: datetime) -> bool:
        if self._read_for is None or time.monotonic() - self._read_at >= self.ttl_seconds:
            return False
        return 0 <= (now - self._read_for).total_seconds() < self.ttl_seconds
