"""Prometheus metrics of one agent process, served on ``LBAAS_AGENT_METRICS_PORT`` when set."""

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

DRIVER_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600)


class AgentMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.driver_duration = Histogram(
            "lbaas_agent_driver_duration_seconds",
            "Driver calls (apply, delete) by driver, action and outcome",
            ["driver", "action", "outcome"],
            buckets=DRIVER_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "lbaas_agent_commands_in_flight",
            "Commands received and not yet acknowledged",
            registry=self.registry,
        )
        self.devices = Gauge(
            "lbaas_agent_devices",
            "Devices this agent watches, by whether they answer",
            ["reachable"],
            registry=self.registry,
        )
        self.repairs = Counter(
            "lbaas_agent_repairs_total",
            "Commands applied again because a device did not hold them",
            registry=self.registry,
        )
        self.orphans_removed = Counter(
            "lbaas_agent_orphans_removed_total",
            "Load balancers deleted from a device because the database does not place them there",
            registry=self.registry,
        )

    def serve(self, host: str, port: int) -> None:
        start_http_server(port, addr=host, registry=self.registry)
