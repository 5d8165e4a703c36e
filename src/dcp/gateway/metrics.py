"""Prometheus metrics of the gateway, served at /metrics to admins."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from dcp.auth import AdminDep
from dcp.kit.errors import error_responses

router = APIRouter(dependencies=[AdminDep])


class GatewayMetrics:
    """One registry per app, so several apps in one process (tests) never share counters."""

    def __init__(self, open_circuits: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "dcp_gateway_requests",
            "Requests by endpoint and outcome",
            ["endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dcp_gateway_request_seconds",
            "Time from admission to the last byte",
            ["endpoint"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.tokens = Counter("dcp_gateway_tokens", "Tokens billed", ["kind"], registry=self.registry)
        self.failovers = Counter(
            "dcp_gateway_failovers", "Requests moved to another provider", registry=self.registry
        )
        self.relayed = Counter(
            "dcp_gateway_relayed",
            "Requests relayed between replicas: out, to the replica holding the provider's link; in, put "
            "on a link here for another replica",
            ["direction"],
            registry=self.registry,
        )
        circuits = Gauge(
            "dcp_gateway_open_circuits", "Providers whose circuit breaker is open", registry=self.registry
        )
        circuits.set_function(open_circuits)

    def record(
        self,
        *,
        endpoint: str,
        status: str,
        seconds: float,
        prompt_tokens: int,
        completion_tokens: int,
        attempts: int,
    ) -> None:
        self.requests.labels(endpoint, status).inc()
        self.latency.labels(endpoint).observe(seconds)
        self.tokens.labels("prompt").inc(prompt_tokens)
        self.tokens.labels("completion").inc(completion_tokens)
        if attempts > 1:
            self.failovers.inc(attempts - 1)


@router.get(
    "/metrics",
    responses=error_responses(401, 403),
    summary="Prometheus metrics (admin token)",
    response_class=Response,
)
async def metrics(request: Request) -> Response:
    gateway_metrics: GatewayMetrics = request.app.state.gateway.metrics
    return Response(generate_latest(gateway_metrics.registry), media_type=CONTENT_TYPE_LATEST)
