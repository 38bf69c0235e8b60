"""The API, the agent and the device daemon serve their Prometheus metrics on a port of their
own (the API's not on its own port, nor in its OpenAPI document)."""

import os
from pathlib import Path

import httpx

from tests.support.haproxy import Device
from tests.support.stack import Agent, Api, Isolation, eventually, free_port, isolated, running


async def _metrics(url: str) -> str | None:
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            response = await http.get(url)
    except httpx.TransportError:
        return None
    return response.text if response.status_code == 200 else None


def _listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (from /proc: its sockets, the kernel's tables)."""
    sockets = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:  # closed since the listing: not a listening socket
            continue
        if target.startswith("socket:["):
            sockets.add(target.removeprefix("socket:[").removesuffix("]"))
    ports = set()
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{pid}/net/{table}") as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in sockets:  # 0A: LISTEN
                    ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def test_the_api_serves_its_metrics_on_a_port_of_their_own(api: Api) -> None:
    text = await eventually(lambda: _metrics(api.metrics_url), what="the API's metrics")
    for family in ("lbaas_http_request_duration_seconds", "lbaas_objects", "lbaas_long_polls"):
        assert family in text
    async with httpx.AsyncClient(base_url=api.url) as http:
        for path in ("/metrics", "/v2/metrics", "/v2.0/metrics"):
            refused = await http.get(path)
            assert refused.status_code == 404, path
            assert refused.headers["content-type"] == "application/problem+json"
        document = (await http.get("/openapi.json")).json()
    assert not [path for path in document["paths"] if "metrics" in path]
    assert api.popen is not None
    assert _listening_ports(api.popen.pid) == {api.port, api.metrics_port}


async def test_the_api_serves_no_metrics_with_port_0(isolation: Isolation, log_dir: Path) -> None:
    api = Api(isolation.api_env(metrics_port=0), log_dir)
    async with running(api):
        api.start()
        await api.wait_ready("/readyz")
        assert api.popen is not None
        assert _listening_ports(api.popen.pid) == {api.port}
        async with httpx.AsyncClient(base_url=api.url) as http:
            assert (await http.get("/metrics")).status_code == 404


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
