"""Per-key token buckets (requests and tokens per minute): in this process, or in Redis so that every
replica draws from the same buckets."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from dcp.kit.limits import RedisOutage


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

    async def check(self, key: str, *, tokens: int) -> float:
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


# Both buckets are refilled and taken in one atomic step, on Redis's own clock (so replicas never disagree).
_REDIS_BUCKETS = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local wanted = math.min(tonumber(ARGV[3]), tpm)
local function level(key, per_minute)
  local data = redis.call('HMGET', key, 'tokens', 'updated')
  local tokens = tonumber(data[1]) or per_minute
  local updated = tonumber(data[2]) or now
  return math.min(per_minute, tokens + (now - updated) * per_minute / 60000)
end
local requests, budget = level(KEYS[1], rpm), level(KEYS[2], tpm)
local allowed = requests >= 1 and budget >= wanted
if allowed then
  requests, budget = requests - 1, budget - wanted
end
redis.call('HSET', KEYS[1], 'tokens', tostring(requests), 'updated', now)
redis.call('HSET', KEYS[2], 'tokens', tostring(budget), 'updated', now)
redis.call('PEXPIRE', KEYS[1], 120000)
redis.call('PEXPIRE', KEYS[2], 120000)
if allowed then return 0 end
local wait = math.max(math.max(0, 1 - requests) * 60000 / rpm, math.max(0, wanted - budget) * 60000 / tpm)
return math.ceil(wait)
"""


class RedisRateLimiter:
    """The same buckets in Redis (``DCP_REDIS_URL``), shared by every replica."""

    def __init__(self, url: str, *, requests_per_minute: int, tokens_per_minute: int) -> None:
        import redis.asyncio as redis

        self.requests_per_minute, self.tokens_per_minute = requests_per_minute, tokens_per_minute
        self._redis = redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = self._redis.register_script(_REDIS_BUCKETS)
        # While Redis does not answer, this process's own buckets stand in (a /v1 request is not failed).
        self._local = RateLimiter(requests_per_minute, tokens_per_minute)
        self._outage = RedisOutage("the /v1 rate limits use this process's own buckets")

    async def check(self, key: str, *, tokens: int) -> float:
        wait_ms = await self._outage.ask(
            self._script,
            keys=[f"dcp:rl:{key}:requests", f"dcp:rl:{key}:tokens"],
            args=[self.requests_per_minute, self.tokens_per_minute, tokens],
        )
        if wait_ms is None:
            return await self._local.check(key, tokens=tokens)
        return int(wait_ms) / 1000

    async def aclose(self) -> None:
        await self._redis.aclose()


Limiter = RateLimiter | RedisRateLimiter
