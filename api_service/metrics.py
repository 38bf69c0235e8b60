"""Prometheus metrics of one API process, served open at ``/metrics``."""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "lbaas_http_request_duration_seconds",
            "HTTP requests by method, route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.results = Counter(
            "lbaas_results_total",
            "Agent results applied, by outcome and verdict",
            ["outcome", "verdict"],
            registry=self.registry,
        )
        self.outbox_backlog = Gauge(
            "lbaas_outbox_backlog",
            "Commands committed but not yet published",
            registry=self.registry,
        )
        self.pending = Gauge(
            "lbaas_pending_loadbalancers",
            "Load balancers in PENDING_* (as of the last reaper pass)",
            registry=self.registry,
        )


class RequestMetrics:
    """Times every HTTP request, labelled by its route template (not the raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status)).observe(
                time.perf_counter() - start
            )
