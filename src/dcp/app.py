"""create_app(): routers under /api and /api/dc1, middleware, error handlers, lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

from dcp import __version__, openapi, web
from dcp.admin import audit
from dcp.admin.api import router as admin_router
from dcp.admin.audit import AdminAudit
from dcp.config import Settings
from dcp.db.engine import Database, open_database
from dcp.gateway import api as gateway_api
from dcp.gateway import metrics as gateway_metrics
from dcp.gateway import usage_api
from dcp.gateway.metrics import GatewayMetrics
from dcp.gateway.ratelimit import Limiter, RateLimiter, RedisRateLimiter
from dcp.gateway.routing import Router
from dcp.gateway.service import Gateway
from dcp.jobs import api as jobs
from dcp.jobs import endpoint, link, relay
from dcp.jobs import provider_api as provider_jobs
from dcp.jobs.event_bus import RedisBus
from dcp.jobs.events import EventHub
from dcp.jobs.submits import SubmitWriter
from dcp.jobs.sweeper import run_forever
from dcp.key_cache import KeyCache
from dcp.kit.clock import Clock
from dcp.kit.cors import ApiCors
from dcp.kit.fast_route import include_flat
from dcp.kit.http import RequestContext, install_error_handlers
from dcp.kit.limits import AbuseLimits, LocalBuckets, RedisBuckets
from dcp.payments import api as payments
from dcp.payments.gateway import PaymentGateway
from dcp.payments.moyasar import MoyasarGateway
from dcp.providers import downloads
from dcp.providers.api import heartbeat_router
from dcp.providers.api import router as providers_router
from dcp.providers.heartbeats import HeartbeatWriter
from dcp.renters.api import router as renters_router
from dcp.withdrawals import api as withdrawals

API_PREFIXES = ("/api", "/api/dc1")


# The /api routers, in the order their routes are matched (under each of API_PREFIXES).
API_ROUTERS: tuple[APIRouter, ...] = (
    providers_router,
    renters_router,
    admin_router,
    withdrawals.provider_router,
    withdrawals.admin_router,
    payments.renter_router,
    payments.webhook_router,
    provider_jobs.router,
    endpoint.router,
    jobs.router,
    link.router,
    downloads.router,
    usage_api.renter_router,
    usage_api.admin_router,
    audit.router,
)


def _limiter(settings: Settings) -> Limiter:
    limits = settings.gateway
    if settings.redis_url:
        return RedisRateLimiter(
            settings.redis_url,
            requests_per_minute=limits.requests_per_minute,
            tokens_per_minute=limits.tokens_per_minute,
        )
    return RateLimiter(
        requests_per_minute=limits.requests_per_minute, tokens_per_minute=limits.tokens_per_minute
    )


def create_app(
    settings: Settings,
    *,
    db: Database | None = None,
    clock: Clock | None = None,
    payment_gateway: PaymentGateway | None = None,
) -> FastAPI:
    """The DCP server. ``db``, ``clock`` and ``payment_gateway`` are injectable so tests can steer them."""
    database = db or open_database(settings.database_url)
    if payment_gateway is None and settings.moyasar.secret_key:
        payment_gateway = MoyasarGateway(settings.moyasar)

    hub = EventHub()
    the_clock = clock or Clock()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        bus = app.state.event_bus = RedisBus(settings.redis_url, hub) if settings.redis_url else None
        if bus is not None:
            bus.start()
        stop = asyncio.Event()
        sweeper = asyncio.create_task(
            run_forever(database, settings=settings, clock=the_clock.now, hub=hub, stop=stop)
        )
        yield
        await app.state.gateway.aclose()  # settle what /v1 requests used, hand their allowances back
        app.state.links.close()
        stop.set()
        await sweeper
        for shared in (app.state.gateway.limiter, app.state.abuse_buckets, bus):
            if isinstance(shared, RedisRateLimiter | RedisBuckets | RedisBus):
                await shared.aclose()
        if db is None:  # a database handed in belongs to the caller
            await database.dispose()

    app = FastAPI(
        title="DCP API",
        version=__version__,
        lifespan=lifespan,
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        # FastAPI's native OpenTelemetry looked for a configured provider on every request (3-4% of a
        # heartbeat's CPU); DCP exports none.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.db = database
    app.state.clock = the_clock
    app.state.hub = hub
    app.state.links = link.LinkRegistry(replica_url=settings.replica_url, secret=settings.secret_bytes)
    limits = settings.gateway
    app.state.key_cache = KeyCache(settings.auth_cache_seconds)
    app.state.heartbeats = HeartbeatWriter(database, settings)
    app.state.submits = SubmitWriter(database, settings)
    router = Router(
        breaker_failures=limits.breaker_failures, breaker_open_seconds=limits.breaker_open_seconds
    )
    app.state.gateway = Gateway(
        db=database,
        settings=settings,
        clock=the_clock,
        links=app.state.links,
        router=router,
        limiter=_limiter(settings),
        metrics=GatewayMetrics(router.open_circuits),
    )
    app.state.payment_gateway = payment_gateway
    app.state.abuse_buckets = RedisBuckets(settings.redis_url) if settings.redis_url else LocalBuckets()
    # Routes are matched in order: first the routes asked for most, each on a router of its own
    # (providers_api.heartbeat_router), then /v1 (the /api routers' many routes took 0.4 ms per /v1 request;
    # these few take it a few µs). They are added flat (include_flat): FastAPI walks included routers twice as
    # slowly. Only the web pages' routers, which nest others, are included (web.install).
    for prefix in API_PREFIXES:
        for hot in (heartbeat_router, jobs.submit_router):
            include_flat(app, hot, prefix=prefix, include_in_schema=prefix == API_PREFIXES[0])
    include_flat(app, relay.router)  # each relayed /v1 request: ahead of the /api routers too
    include_flat(app, gateway_api.router)
    for prefix in API_PREFIXES:
        for routes in API_ROUTERS:
            include_flat(app, routes, prefix=prefix, include_in_schema=prefix == API_PREFIXES[0])
    include_flat(app, gateway_metrics.router)
    include_flat(app, openapi.router)
    app.openapi = lambda: openapi.build_spec(app)  # type: ignore[method-assign]
    install_error_handlers(app)
    web.install(app)
    app.add_middleware(AdminAudit, db=database, clock=the_clock)
    app.add_middleware(
        AbuseLimits, buckets=app.state.abuse_buckets, limits=settings.limits, page=web.too_many_requests_page
    )
    app.add_middleware(
        RequestContext,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        body_timeout_seconds=settings.body_timeout_seconds,
    )
    if settings.cors_origins:  # outermost, so that refusals (413, 429) can be read by the calling page too
        app.add_middleware(ApiCors, origins=settings.cors_origins)
    return app
