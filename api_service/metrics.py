"""Prometheus metrics of one API process (prefix ``lbaas_``), served at ``/metrics`` on an
address of their own, ``LBAAS_METRICS_HOST:LBAAS_METRICS_PORT``, not on the API's.

Counters and histograms are this process's; the gauges of the census
(objects by status, devices, outbox) are read from the database by every
replica, so any one of them answers for the whole service.
"""

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_service.services.census import Census

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600)


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
        self.long_polls = Gauge(
            "lbaas_long_polls",
            "Long polls (GET with wait_for) waiting in this process",
            registry=self.registry,
        )
        self.pending = Gauge(
            "lbaas_pending_loadbalancers",
            "Load balancers in PENDING_* (as of the last reaper pass)",
            registry=self.registry,
        )
        self.operations = Counter(
            "lbaas_operations_total",
            "Operations finished by this process, by action and final status",
            ["action", "status"],
            registry=self.registry,
        )
        self.operation_duration = Histogram(
            "lbaas_operation_duration_seconds",
            "From the 202 to the agent's result applied, by action",
            ["action"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.result_lag = Histogram(
            "lbaas_result_lag_seconds",
            "From the agent finishing a command to the API applying its result",
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.objects = Gauge(
            "lbaas_objects",
            "Objects of the tree by kind and provisioning status (census)",
            ["kind", "provisioning_status"],
            registry=self.registry,
        )
        self.devices = Gauge(
            "lbaas_devices",
            "Devices by operating status as their agents last reported it (census)",
            ["operating_status"],
            registry=self.registry,
        )
        self.outbox_age = Gauge(
            "lbaas_outbox_oldest_seconds",
            "Age of the oldest command committed but not yet published (census)",
            registry=self.registry,
        )

    def record(self, census: Census) -> None:
        self.objects.clear()
        for (kind, status), count in census.objects.items():
            self.objects.labels(kind, status).set(count)
        self.devices.clear()
        for status, count in census.devices.items():
            self.devices.labels(status).set(count)
        self.outbox_age.set(census.outbox_age)

    def serve(self, host: str, port: int) -> None:
        """Serve them (in a thread of their own) for as long as the process runs."""
        try:
            start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise OSError(
                exc.errno,
                f"cannot serve the metrics on {host}:{port} (LBAAS_METRICS_HOST, "
                f"LBAAS_METRICS_PORT): {exc.strerror}",
            ) from None


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
