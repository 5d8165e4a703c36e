"""Abuse limits for /api and the pages: token buckets per key (or per IP for anonymous callers), and tighter
per-IP buckets for registering and signing in. In this process, or in Redis so every replica shares them."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl

from redis.exceptions import RedisError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dcp.config import LimitSettings

log = logging.getLogger("dcp.limits")
T = TypeVar("T")


class Buckets(Protocol):
    async def take(self, key: str, *, capacity: int, window_seconds: int) -> float:
        """Take one from the key's bucket; 0 when allowed, else the seconds until one is back."""
        ...


@dataclass
class LocalBuckets:
    """Buckets in this process; full (idle) buckets are dropped now and then, so memory stays bounded."""

    prune_every: int = 10_000
    clock: Callable[[], float] = time.monotonic
    _levels: dict[str, tuple[float, float]] = field(default_factory=dict)  # key -> (tokens, updated)
    _taken: int = 0

    async def take(self, key: str, *, capacity: int, window_seconds: int) -> float:
        now = self.clock()
        rate = capacity / window_seconds
        tokens, updated = self._levels.get(key, (capacity, now))
        tokens = min(capacity, tokens + (now - updated) * rate)
        self._taken += 1
        if self._taken % self.prune_every == 0:
            self._prune(now)
        if tokens >= 1:
            self._levels[key] = (tokens - 1, now)
            return 0.0
        self._levels[key] = (tokens, now)
        return (1 - tokens) / rate

    def _prune(self, now: float) -> None:
        # A bucket idle for an hour is full again for every window used here: forgetting it changes nothing.
        self._levels = {k: v for k, v in self._levels.items() if now - v[1] < 3600}


# Takes for many keys in one call: each script call costs about 80 µs of this process's CPU in redis-py
# (measured), whatever it carries, which alone was more than half of what a heartbeat costs.
_REDIS_TAKE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local waits = {}
for i, key in ipairs(KEYS) do
  local capacity, window_ms = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i]) * 1000
  local data = redis.call('HMGET', key, 'tokens', 'updated')
  local tokens = tonumber(data[1]) or capacity
  local updated = tonumber(data[2]) or now
  tokens = math.min(capacity, tokens + (now - updated) * capacity / window_ms)
  local wait = 0
  if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * window_ms / capacity) end
  redis.call('HSET', key, 'tokens', tostring(tokens), 'updated', now)
  redis.call('PEXPIRE', key, window_ms)
  waits[i] = wait
end
return waits
"""


class RedisOutage:
    """Says once that Redis stopped answering, and once that it answers again, not once per request; after a
    failure, Redis is asked again only every ``retry_seconds`` (a Redis that does not even refuse would
    otherwise hold every request for the connect timeout)."""

    def __init__(self, what: str, *, retry_seconds: float = 5.0) -> None:
        self.what, self.retry_seconds, self.down, self._failed_at = what, retry_seconds, False, 0.0

    async def ask(self, call: Callable[..., Awaitable[T]], **arguments: Any) -> T | None:
        """``call(**arguments)``'s answer from Redis; None when Redis does not answer, or failed too recently
        to be asked again (the caller then answers with its own buckets)."""
        if self.down and time.monotonic() - self._failed_at < self.retry_seconds:
            return None
        try:
            answer = await call(**arguments)
        except (RedisError, OSError) as exc:
            self.failed(exc)
            return None
        self.answered()
        return answer

    def failed(self, exc: Exception) -> None:
        self._failed_at = time.monotonic()
        if not self.down:
            self.down = True
            log.warning("Redis is not answering (%r): %s until it does", exc, self.what)

    def answered(self) -> None:
        if self.down:
            self.down = False
            log.warning("Redis answers again (meanwhile %s)", self.what)


class RedisBuckets:
    """The same buckets in Redis (``DCP_REDIS_URL``), on Redis's clock, shared by every replica. The takes
    that arrive while one call is out go together in the next, in arrival order. While Redis does not answer,
    this process's own buckets stand in: an outage of Redis must not refuse (or fail) every request."""

    def __init__(self, url: str, *, retry_seconds: float = 5.0) -> None:
        import redis.asyncio as redis

        self._redis = redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._script = self._redis.register_script(_REDIS_TAKE)
        self._waiting: list[tuple[str, int, int, asyncio.Future[float]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._local = LocalBuckets()
        what = "the abuse limits use this process's own buckets"
        self._outage = RedisOutage(what, retry_seconds=retry_seconds)

    async def take(self, key: str, *, capacity: int, window_seconds: int) -> float:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting.append((f"dcp:limit:{key}", capacity, window_seconds, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send())
        return await future

    async def _send(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                answers: list[float] | Exception = await self._answers(batch)
            except Exception as exc:  # a fault that is not an outage: its requests fail, not wait for good
                answers = exc
            for n, (*_, future) in enumerate(batch):
                if future.done():  # its request may have gone meanwhile
                    continue
                if isinstance(answers, Exception):
                    future.set_exception(answers)
                else:
                    future.set_result(answers[n])

    async def _answers(self, batch: list[tuple[str, int, int, asyncio.Future[float]]]) -> list[float]:
        keys = [key for key, _, _, _ in batch]
        args = [n for _, *limit, _ in batch for n in limit]
        waits = await self._outage.ask(self._script, keys=keys, args=args)
        if waits is None:
            return [
                await self._local.take(key, capacity=capacity, window_seconds=window)
                for key, capacity, window, _ in batch
            ]
        if len(waits) != len(batch):
            raise RuntimeError(f"Redis answered {len(waits)} takes for {len(batch)}")
        return [int(wait_ms) / 1000 for wait_ms in waits]

    async def aclose(self) -> None:
        await self._redis.aclose()


_SIGN_UP_PATHS = frozenset(
    f"{base}/{who}/register" for base in ("/api", "/api/dc1", "") for who in ("renters", "providers")
) | {"/renter/register", "/provider/register"}
_SIGN_IN_PATHS = frozenset({"/signin"})
_CREDENTIAL_HEADERS = (b"x-renter-key", b"x-provider-key", b"x-api-key", b"x-admin-token", b"authorization")
# /v1 has its own per-key limits in the gateway; /api/internal/ is other replicas relaying their callers'
# requests (limited where they arrived), refused without their token.
_UNLIMITED = ("/static/", "/v1/", "/metrics", "/api/internal/")
_REMEMBERED_SECONDS = 60.0
_MAX_REMEMBERED = 10_000  # addresses, or credentials, remembered at most


class AbuseLimits:
    """ASGI middleware: answers 429 with Retry-After when a caller goes past its bucket."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        buckets: Buckets,
        limits: LimitSettings,
        page: Callable[[Scope, int], Response | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``page``: the answer for a request that wants a web page, if it does (else the JSON one)."""
        self.app, self.buckets, self.limits, self.page, self.clock = app, buckets, limits, page, clock
        # Addresses that sent a credential the server refused (401), and until when: their requests with a
        # credential not known good (accepted lately) also take from the address's bucket, so guessing keys,
        # or sending made-up ones to get a bucket each, runs into the address's limit, while the valid keys
        # of others behind that address keep their own buckets.
        self._refused = _Remembered()
        self._accepted = _Remembered()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_UNLIMITED):
            await self.app(scope, receive, send)
            return
        ip = scope["client"][0] if scope.get("client") else "unknown"
        credential = _credential(scope)
        wait = await self._wait(scope, ip, credential)
        if wait <= 0 and credential is not None:
            await self.app(scope, receive, self._watching(send, ip, credential))
            return
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            page = self.page(scope, seconds) if self.page else None
            if page is not None:
                await page(scope, receive, send)
            else:
                await _too_many(send, seconds)
            return
        await self.app(scope, receive, send)

    def _watching(self, send: Send, ip: str, credential: str) -> Send:
        async def watched(message: Message) -> None:
            if message["type"] == "http.response.start":
                if message["status"] == 401:
                    self._refused.note(ip, self.clock())
                else:
                    self._accepted.note(credential, self.clock())
            await send(message)

        return watched

    async def _wait(self, scope: Scope, ip: str, credential: str | None) -> float:
        path, limits = scope["path"], self.limits
        if scope["method"] == "POST" and path in _SIGN_UP_PATHS:
            return await self.buckets.take(
                f"signup:{ip}", capacity=limits.signups_per_hour_per_ip, window_seconds=3600
            )
        if scope["method"] == "POST" and path in _SIGN_IN_PATHS:
            return await self.buckets.take(
                f"signin:{ip}", capacity=limits.sign_ins_per_minute_per_ip, window_seconds=60
            )
        now = self.clock()
        suspect = self._refused.holds(ip, now) and not self._accepted.holds(credential or "", now)
        by_address = credential is None or suspect
        address_wait = (
            await self.buckets.take(f"ip:{ip}", capacity=limits.requests_per_minute_per_ip, window_seconds=60)
            if by_address
            else 0.0
        )
        if credential is None:
            return address_wait
        key_wait = await self.buckets.take(
            f"key:{credential}", capacity=limits.requests_per_minute_per_key, window_seconds=60
        )
        return max(address_wait, key_wait)


class _Remembered:
    """Names seen lately, each for ``_REMEMBERED_SECONDS``; at most ``_MAX_REMEMBERED`` (past that, the
    oldest are forgotten first)."""

    def __init__(self) -> None:
        self._until: dict[str, float] = {}

    def note(self, name: str, now: float) -> None:
        self._until.pop(name, None)  # to the end: the dict keeps the order of the latest notes
        self._until[name] = now + _REMEMBERED_SECONDS
        while len(self._until) > _MAX_REMEMBERED:
            del self._until[next(iter(self._until))]

    def holds(self, name: str, now: float) -> bool:
        return self._until.get(name, 0.0) > now


def _credential(scope: Scope) -> str | None:
    """A fingerprint of the caller's key, token or session (never the secret itself), or None."""
    headers = dict(scope["headers"])
    for name in _CREDENTIAL_HEADERS:
        if value := headers.get(name):
            return hashlib.sha256(value).hexdigest()[:24]
    query = scope.get("query_string", b"")
    if b"key" in query and (key := _query_key(query)):  # the key alone: other parameters change nothing
        return hashlib.sha256(key.encode()).hexdigest()[:24]
    cookie = headers.get(b"cookie", b"")
    if b"dcp_session=" in cookie:
        session = cookie.split(b"dcp_session=", 1)[1].split(b";", 1)[0]
        return hashlib.sha256(session).hexdigest()[:24] if session else None
    return None


def _query_key(query: bytes) -> str | None:
    """The ``key`` parameter, read as the server reads it (``k%65y`` too)."""
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "key":
            return value
    return None


async def _too_many(send: Send, seconds: int) -> None:
    body = json.dumps(
        {"error": f"Too many requests; try again in {seconds} s", "retry_after_seconds": seconds}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(seconds).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
