"""Per-key token buckets (requests and tokens per minute), in this process."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    capacity: float
    tokens: float
    updated: float


@dataclass
class RateLimiter:
    requests_per_minute: int
    tokens_per_minute: int
    _buckets: dict[tuple[str, str], _Bucket] = field(default_factory=dict)

    def check(self, key: str, *, tokens: int) -> float:
        """Take one request and ``tokens`` from the key's buckets; 0 when allowed, else seconds to wait."""
        now = time.monotonic()
        requests = self._refilled(key, "requests", self.requests_per_minute, now)
        budget = self._refilled(key, "tokens", self.tokens_per_minute, now)
        wanted = min(tokens, self.tokens_per_minute)
        if requests.tokens >= 1 and budget.tokens >= wanted:
            requests.tokens -= 1
            budget.tokens -= wanted
            return 0.0
        missing_requests = max(0.0, 1 - requests.tokens) * 60 / self.requests_per_minute
        missing_tokens = max(0.0, wanted - budget.tokens) * 60 / self.tokens_per_minute
        return max(missing_requests, missing_tokens)

    def _refilled(self, key: str, kind: str, per_minute: int, now: float) -> _Bucket:
        bucket = self._buckets.get((key, kind))
        if bucket is None:
            bucket = self._buckets[(key, kind)] = _Bucket(per_minute, per_minute, now)
        bucket.tokens = min(bucket.capacity, bucket.tokens + (now - bucket.updated) * per_minute / 60)
        bucket.updated = now
        return bucket
