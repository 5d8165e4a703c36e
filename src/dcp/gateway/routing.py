"""Choosing a provider for a /v1 request: healthy ones only, least outstanding requests (power of two
choices), the same provider for the same conversation prefix when it has room, and a circuit breaker."""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass, field


@dataclass
class _Breaker:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


@dataclass(frozen=True)
class Candidate:
    """A provider of the pool, as routing needs it."""

    provider_id: int
    concurrency: int
    replica: str | None = None  # the replica holding its link (``providers.link_replica``)


@dataclass
class Router:
    """Per server process: outstanding requests and breakers of the providers whose links land here."""

    breaker_failures: int = 3
    breaker_open_seconds: float = 30.0
    outstanding: dict[int, int] = field(default_factory=dict)
    breakers: dict[int, _Breaker] = field(default_factory=dict)

    def choose(self, candidates: list[Candidate], *, affinity: str, exclude: set[int]) -> Candidate | None:
        usable = [c for c in candidates if c.provider_id not in exclude and self._admits(c)]
        if not usable:
            return None
        preferred = max(usable, key=lambda c: _rendezvous(affinity, c.provider_id))
        if self.outstanding.get(preferred.provider_id, 0) == 0 or len(usable) == 1:
            return self._take(preferred)
        pair = random.sample(usable, 2)
        best = min(pair, key=lambda c: self.outstanding.get(c.provider_id, 0) / c.concurrency)
        return self._take(best)

    def _admits(self, candidate: Candidate) -> bool:
        if self.outstanding.get(candidate.provider_id, 0) >= candidate.concurrency:
            return False
        breaker = self.breakers.get(candidate.provider_id)
        if breaker is None or breaker.failures < self.breaker_failures:
            return True
        if time.monotonic() < breaker.open_until or breaker.probing:
            return False
        breaker.probing = True  # half-open: one request probes whether it recovered
        return True

    def _take(self, candidate: Candidate) -> Candidate:
        self.outstanding[candidate.provider_id] = self.outstanding.get(candidate.provider_id, 0) + 1
        return candidate

    def release(self, provider_id: int, *, ok: bool) -> None:
        self.outstanding[provider_id] = max(0, self.outstanding.get(provider_id, 1) - 1)
        breaker = self.breakers.setdefault(provider_id, _Breaker())
        breaker.probing = False
        if ok:
            breaker.failures = 0
            return
        breaker.failures += 1
        if breaker.failures >= self.breaker_failures:
            breaker.open_until = time.monotonic() + self.breaker_open_seconds

    def open_circuits(self) -> int:
        now = time.monotonic()
        return sum(
            1 for b in self.breakers.values() if b.failures >= self.breaker_failures and b.open_until > now
        )


def _rendezvous(key: str, provider_id: int) -> int:
    return int.from_bytes(hashlib.blake2b(f"{key}|{provider_id}".encode(), digest_size=8).digest(), "big")
