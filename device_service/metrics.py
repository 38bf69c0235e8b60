"""Prometheus metrics of ``lbaas-device``, served on ``LBAAS_DEVICE_METRICS_LISTEN`` when set."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

APPLY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class DeviceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.applies = Histogram(
            "lbaas_device_apply_duration_seconds",
            "Configurations put, from the request to the process confirmed, by what happened",
            ["outcome"],
            buckets=APPLY_BUCKETS,
            registry=self.registry,
        )
        self.reloads = Counter(
            "lbaas_device_haproxy_reloads_total",
            "HAProxy starts and reloads, by kind and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.instances = Gauge(
            "lbaas_device_instances",
            "Load balancers on this device, by state (running, idle, down)",
            ["state"],
            registry=self.registry,
        )

    def serve(self, listen: str) -> None:
        host, _, port = listen.rpartition(":")
        start_http_server(int(port), addr=host, registry=self.registry)
