"""The agent and the device daemon serve their Prometheus metrics on a port of their own."""

from pathlib import Path

import httpx

from tests.support.haproxy import Device
from tests.support.stack import Agent, eventually, free_port, isolated, running


async def _metrics(url: str) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            response = await http.get(url)
    except httpx.TransportError:
        return None
    return response.text if response.status_code == 200 else None


async def test_the_agent_serves_its_metrics(log_dir: Path) -> None:
    port = free_port()
    async with isolated() as isolation:
        agent = Agent(isolation.agent_env(metrics_port=port), log_dir, "agent-metrics")
        async with running(agent):
            agent.start()
            text = await eventually(
                lambda: _metrics(f"http://127.0.0.1:{port}/metrics"), what="the agent's metrics"
            )
    for family in (
        "lbaas_agent_commands_in_flight",
        "lbaas_agent_driver_duration_seconds",
        "lbaas_agent_devices",
        "lbaas_agent_repairs_total",
    ):
        assert family in text


async def test_the_device_serves_its_metrics(log_dir: Path) -> None:
    port = free_port()
    device = Device(log_dir, environment={"LBAAS_DEVICE_METRICS_LISTEN": f"127.0.0.1:{port}"})
    device.start()
    try:
        await device.wait_ready()
        text = await eventually(
            lambda: _metrics(f"http://127.0.0.1:{port}/metrics"), what="the device's metrics"
        )
    finally:
        device.purge()
    for family in (
        "lbaas_device_apply_duration_seconds",
        "lbaas_device_haproxy_reloads_total",
        "lbaas_device_instances",
    ):
        assert family in text
