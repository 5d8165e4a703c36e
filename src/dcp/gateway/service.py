"""A /v1 request from admission to settlement: reserve the worst case, relay with failover, bill usage."""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dcp.billing import settlement
from dcp.billing.pricing import TokenPrice, token_cost
from dcp.billing.token_prices import PriceCache
from dcp.config import Settings
from dcp.db.engine import Database
from dcp.db.group_commit import GroupCommit
from dcp.gateway.allowance import Allowances, Reservation
from dcp.gateway.billing import Outcome, write_outcomes
from dcp.gateway.errors import ModelNotFound, NoCapacity, ProviderUnavailable, RateLimited, UpstreamTimeout
from dcp.gateway.metrics import GatewayMetrics
from dcp.gateway.pool import PoolCache
from dcp.gateway.ratelimit import Limiter
from dcp.gateway.routing import Candidate, Router
from dcp.gateway.schemas import ChatRequest, CompletionRequest
from dcp.jobs.link import LinkRegistry
from dcp.jobs.relay import RelayError, RemoteLink
from dcp.kit.clock import Clock
from dcp.kit.errors import BadRequest

log = logging.getLogger("dcp.gateway")
POOL = "pool"


@dataclass
class Gateway:
    """What the gateway keeps between requests, per server process."""

    db: Database
    settings: Settings
    clock: Clock
    links: LinkRegistry
    router: Router
    limiter: Limiter
    metrics: GatewayMetrics
    _background: set[asyncio.Task[None]] = field(default_factory=set)
    # What changes slowly is read at most every few seconds per process (the TTLs are in the settings).
    pool_cache: PoolCache = field(init=False)
    price_cache: PriceCache = field(init=False)
    allowances: Allowances = field(init=False)
    outcomes: GroupCommit[Outcome] = field(init=False)

    def __post_init__(self) -> None:
        limits = self.settings.gateway
        self.pool_cache = PoolCache(limits.pool_cache_seconds)
        self.price_cache = PriceCache(limits.price_cache_seconds)
        self.allowances = Allowances(self.db, limits, self.clock.now)
        self.outcomes = GroupCommit(
            self.db,
            write_outcomes,
            max_batch=limits.ledger_batch_max,
            name="settlements",
            gather_seconds=limits.settlement_batch_wait_seconds,
        )

    def in_background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` off the request's path (a cache refresh, a stream's reading); a failure is logged."""
        task = asyncio.create_task(work)
        self._background.add(task)
        task.add_done_callback(_background_done(self._background))

    async def settle_all(self) -> None:
        """Write every settlement of the requests finished so far."""
        await asyncio.sleep(0)  # the finishing steps scheduled before this run first
        await self.outcomes.flush()

    async def aclose(self) -> None:
        """At shutdown: settle what finished, then hand every allowance back. A failure (the database gone)
        is logged, not raised, so the rest of the shutdown runs: the sweeper of a later process then closes
        the allowances, and what was not settled is charged to nobody."""
        try:
            await self.settle_all()
            await self.allowances.aclose()
        except Exception:
            log.exception("could not settle and hand back the /v1 allowances at shutdown")


def _background_done(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled() and (problem := task.exception()) is not None:
            log.warning("the gateway's background work failed: %s", problem)

    return done


@dataclass
class Admitted:
    request_id: str
    renter_id: int
    model: str
    endpoint: str
    max_tokens: int
    prompt_bound: int  # at least the tokens an engine counts for the prompt: no provider may report more
    reserved: int  # the worst case, which ``reserve`` sets aside from the renter's allowance
    price: TokenPrice
    candidates: list[Candidate]
    affinity: str
    now: datetime
    started: float = field(default_factory=time.monotonic)
    reservation: Reservation | None = None
    attempts: int = 0  # providers tried so far


async def admit(
    gateway: Gateway,
    *,
    renter_id: int,
    body: ChatRequest | CompletionRequest,
    endpoint: str,
    request_id: str,
    now: datetime,
) -> Admitted:
    """Check the limits, find serving providers, and price the worst case; ``reserve`` then sets it aside.
    The pool and the price come from this process's caches: a read (outside any write transaction) only
    when one is missing or stale."""
    limits = gateway.settings.gateway
    max_tokens = body.max_completion_tokens or body.max_tokens or limits.default_max_tokens
    if max_tokens > limits.max_tokens_limit:
        raise BadRequest(f"Invalid max_tokens: at most {limits.max_tokens_limit}")
    prompt = body.prompt_text()
    prompt_bound = body.prompt_bound()
    if wait := await gateway.limiter.check(str(renter_id), tokens=prompt_bound + max_tokens):
        raise RateLimited(wait)
    candidates = await _candidates(gateway, body.model, now=now)
    price = await _price(gateway, body.model)
    reserved = token_cost(prompt_tokens=prompt_bound, completion_tokens=max_tokens, price=price)
    return Admitted(
        request_id=request_id,
        renter_id=renter_id,
        model=body.model,
        endpoint=endpoint,
        max_tokens=max_tokens,
        prompt_bound=prompt_bound,
        reserved=reserved,
        price=price,
        candidates=candidates,
        affinity=f"{body.model}|{prompt[:256]}",
        now=now,
    )


async def reserve(gateway: Gateway, admitted: Admitted) -> None:
    """Set the worst-case cost aside from the renter's allowance (402 if their money cannot cover it); a
    write only when the allowance is short."""
    if admitted.reserved:
        admitted.reservation = await gateway.allowances.reserve(admitted.renter_id, admitted.reserved)


async def _candidates(gateway: Gateway, model: str, *, now: datetime) -> list[Candidate]:
    """The providers serving ``model`` whose link is up here or on another replica (the pool may be a second
    old)."""
    cache, links, settings = gateway.pool_cache, gateway.links, gateway.settings

    def linked(servers: list[Candidate]) -> list[Candidate]:
        return [s for s in servers if links.reachable(s.provider_id, s.replica)]

    servers = cache.peek(model, now=now)
    if servers is not None and (found := linked(servers)):
        if cache.refresh_due():
            gateway.in_background(_refresh_pool(gateway, now=now))
        return found
    # Not cached, or those cached have left: read it now (maybe others joined since).
    async with gateway.db.reader() as session:
        servers = await cache.servers(session, model, settings=settings, now=now, reread=servers is not None)
    if not servers:
        raise ModelNotFound(f"The model '{model}' is not served by any online provider now")
    return linked(servers)


async def _refresh_pool(gateway: Gateway, *, now: datetime) -> None:
    async with gateway.db.reader() as session:
        await gateway.pool_cache.servers(session, "", settings=gateway.settings, now=now, reread=True)


async def _price(gateway: Gateway, model: str) -> TokenPrice:
    cache, pricing = gateway.price_cache, gateway.settings.pricing
    if (price := cache.peek(model, pricing)) is not None:
        if cache.refresh_due(model, pricing):
            gateway.in_background(_refresh_price(gateway, model))
        return price
    async with gateway.db.reader() as session:
        return await cache.price_for(session, model, pricing)


async def _refresh_price(gateway: Gateway, model: str) -> None:
    async with gateway.db.reader() as session:
        await gateway.price_cache.price_for(session, model, gateway.settings.pricing, reread=True)


@dataclass
class Upstream:
    provider_id: int
    status: int
    media_type: str
    first: str
    rest: AsyncIterator[str]
    attempts: int


async def connect(gateway: Gateway, admitted: Admitted, *, path: str, body: dict[str, Any]) -> Upstream:
    """The first provider that answers with a first chunk in time; 5xx, 429, errors and timeouts fail over."""
    tried: set[int] = set()
    last_error: Exception = NoCapacity("No serving provider has capacity now; retry shortly")
    for attempt in range(1, gateway.settings.gateway.max_attempts + 1):
        candidate = gateway.router.choose(admitted.candidates, affinity=admitted.affinity, exclude=tried)
        if candidate is None:
            break
        provider_id = candidate.provider_id
        tried.add(provider_id)
        admitted.attempts = attempt
        link = gateway.links.reach(provider_id, candidate.replica, concurrency=candidate.concurrency)
        if isinstance(link, RemoteLink):
            gateway.metrics.relayed.labels("out").inc()
        try:
            if link is None:
                raise RelayError("the provider disconnected")
            async with asyncio.timeout(gateway.settings.gateway.first_token_timeout_seconds):
                status, media_type, iterator, first = await _first_chunk(link, path=path, body=body)
        except TimeoutError:
            gateway.router.release(provider_id, ok=False)
            last_error = UpstreamTimeout(
                f"Provider failover exhausted after initial error: timeout (attempt {attempt})"
            )
            continue
        except RelayError as exc:
            gateway.router.release(provider_id, ok=False)
            last_error = ProviderUnavailable(f"Provider failover exhausted after initial error: {exc}")
            continue
        if status >= 500 or status == 429:
            gateway.router.release(provider_id, ok=False)
            last_error = ProviderUnavailable(
                f"Provider failover exhausted after initial error: upstream {status}"
            )
            continue
        return Upstream(provider_id, status, media_type, first, iterator, attempt)
    raise last_error


async def _first_chunk(
    link: Any, *, path: str, body: dict[str, Any]
) -> tuple[int, str, AsyncIterator[str], str]:
    status, media_type, chunks = await link.relay(
        job_id=POOL, method="POST", path=path, body=json.dumps(body), content_type="application/json"
    )
    iterator = aiter(chunks)
    return status, media_type, iterator, await anext(iterator, "")


def finish(
    gateway: Gateway,
    admitted: Admitted,
    *,
    provider_id: int | None,
    usage: dict[str, Any] | None,
    error: str | None,
    attempts: int,
) -> None:
    """Bill real usage (capped at the worst case) from the allowance and queue its settlement and usage
    row, written with other requests' after the response; a failed request costs nothing. Done by the
    event loop as soon as the request's task yields (its response written), whatever becomes of the task."""
    work = functools.partial(
        _finish_now, gateway, admitted, provider_id=provider_id, usage=usage, error=error, attempts=attempts
    )
    asyncio.get_running_loop().call_soon(work)


def _finish_now(
    gateway: Gateway,
    admitted: Admitted,
    *,
    provider_id: int | None,
    usage: dict[str, Any] | None,
    error: str | None,
    attempts: int,
) -> None:
    now = gateway.clock.now()
    counts = _token_counts(usage)
    if counts is None:  # billed as none reported: the renter is not charged for what cannot be read
        error, counts = error or "the provider reported usage that is not token counts", (0, 0)
    # What a provider reports is believed up to what the request could have used.
    prompt_tokens = min(counts[0], admitted.prompt_bound)
    completion_tokens = min(counts[1], admitted.max_tokens)
    cost = 0
    if admitted.reserved and provider_id is not None and error is None:
        price = admitted.price
        cost = token_cost(prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, price=price)
        cost = min(admitted.reserved, cost)
    usage_row = {
        "request_id": admitted.request_id,
        "renter_id": admitted.renter_id,
        "provider_id": provider_id,
        "model": admitted.model,
        "endpoint": admitted.endpoint,
        "status": "failed" if error else "completed",
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cost_halala": cost,
        "attempts": attempts,
        "latency_ms": int((time.monotonic() - admitted.started) * 1000),
        "error": (error or None) and error[:500],
        "created_at": now,
    }
    reservation = admitted.reservation
    finish_ = None
    if reservation is not None:
        gateway.allowances.finished(reservation, cost=cost)
    if reservation is not None and cost and provider_id is not None:
        finish_ = settlement.drawn(
            renter_id=admitted.renter_id,
            provider_id=provider_id,
            work_ref=admitted.request_id,
            cost=cost,
            provider_percent=gateway.settings.pricing.provider_share_percent,
            now=now,
        )
    allowance_id = reservation.allowance_id if reservation is not None else None
    written = gateway.outcomes.submit(Outcome(finish_, usage_row, allowance_id))
    if finish_ is not None and reservation is not None:
        written.add_done_callback(lambda done: _settled(gateway, reservation, done))
    gateway.metrics.record(
        endpoint=admitted.endpoint,
        status="failed" if error else "completed",
        seconds=time.monotonic() - admitted.started,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        attempts=attempts,
    )


def _token_counts(usage: Any) -> tuple[int, int] | None:
    """The prompt and completion tokens in a provider's ``usage`` (none: 0 and 0); None when they are not
    counts (a string, a negative number), which failed the settlement and kept the renter's money held."""
    if usage is None:
        return 0, 0
    if not isinstance(usage, dict):
        return None
    counts = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    if any(type(count) is not int or count < 0 for count in counts):
        return None
    return counts


def _settled(gateway: Gateway, reservation: Reservation, done: asyncio.Future[None]) -> None:
    gateway.allowances.settled(reservation)
    if not done.cancelled() and (problem := done.exception()) is not None:
        # The renter is not charged for it: the allowance hands back what no settlement took.
        log.error("a /v1 settlement could not be written: %s", problem)


def json_object(data: str) -> dict[str, Any] | None:
    """``data`` parsed, if it is a JSON object."""
    try:
        parsed = json.loads(data)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None
