"""``lbaas-device`` on its own: real HAProxy processes, real sockets, its HTTP API.

Configurations are rendered by the ``haproxy`` driver's renderer from specs,
as the agent does.
"""

import asyncio
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agent_service.drivers.haproxy.render import render
from shared.device_api import config_digest
from shared.messages import LoadBalancerSpec
from tests.support.haproxy import PORT, Backend, Device, http_spec, running_device, vip_cidr
from tests.support.stack import BIN, eventually

pytestmark = pytest.mark.slow

NAMES = {"b0", "b1", "b2"}
"""What the ``backends`` fixture's servers answer."""


@pytest.fixture
async def device(log_dir: Path) -> AsyncIterator[Device]:
    async with running_device(log_dir) as device:
        yield device


def spec(vip: str, backends: list[Backend], generation: int = 1) -> LoadBalancerSpec:
    return http_spec(vip, [(b.address, b.port) for b in backends], generation)


def vip() -> str:
    return vip_cidr().replace(".0/24", ".7")


async def put(device: Device, lb: LoadBalancerSpec) -> httpx.Response:
    async with device.http() as http:
        return await http.put(
            f"/v1/loadbalancers/{lb.id}", json={"generation": lb.generation, "config": render(lb)}
        )


async def answers(url: str) -> str:
    async with httpx.AsyncClient(timeout=2) as http:
        return (await http.get(url)).text


async def test_every_call_needs_the_secret_and_an_unauthenticated_one_changes_nothing(
    device: Device, backends: list[Backend]
) -> None:
    address = vip()
    lb = spec(address, backends)
    for secret in ("", "wrong-secret-of-enough-length", device.secret + "x"):
        async with device.http(secret) as http:
            for method, path, body in (
                ("PUT", f"/v1/loadbalancers/{lb.id}", {"generation": 1, "config": render(lb)}),
                ("DELETE", f"/v1/loadbalancers/{lb.id}", None),
                ("GET", "/v1/loadbalancers", None),
                ("GET", "/v1/status", None),
                ("GET", "/healthz", None),
            ):
                response = await http.request(method, path, json=body)
                assert response.status_code == 401, (method, path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
    assert list(device.state_dir.iterdir()) == []
    assert (await put(device, lb)).status_code == 200
    async with device.http("not-the-secret-either") as http:
        assert (await http.delete(f"/v1/loadbalancers/{lb.id}")).status_code == 401
    assert await answers(f"http://{address}:{PORT}/") in NAMES


async def test_put_serves_the_config_and_the_same_config_changes_nothing(
    device: Device, backends: list[Backend]
) -> None:
    address = vip()
    lb = spec(address, backends)
    first = await put(device, lb)
    assert first.status_code == 200, first.text
    assert first.json()["changed"] is True
    assert first.json()["digest"] == config_digest(render(lb))
    master = device.master_pid(str(lb.id))
    assert {await answers(f"http://{address}:{PORT}/") for _ in range(6)} == NAMES

    again = await put(device, spec(address, backends, generation=2))
    assert again.json()["changed"] is False
    assert again.json()["generation"] == 2
    assert device.master_pid(str(lb.id)) == master
    async with device.http() as http:
        listed = (await http.get("/v1/loadbalancers")).json()["loadbalancers"]
    assert listed == [
        {"id": str(lb.id), "generation": 2, "digest": config_digest(render(lb)), "state": "running"}
    ]
    environment = device.environment(str(lb.id))
    foreign = [v for v in environment if not v.startswith((b"PATH=", b"HAPROXY_"))]
    assert foreign == [], "HAProxy runs with a minimal environment (its own HAPROXY_* aside)"


async def test_an_older_generation_is_refused_and_changes_nothing(
    device: Device, backends: list[Backend]
) -> None:
    """A command redelivered late must not undo a newer one."""
    address = vip()
    newer = spec(address, backends[:1], generation=3)
    assert (await put(device, newer)).status_code == 200
    older = spec(address, backends, generation=2)
    assert older.id == newer.id
    refused = await put(device, older)
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "generation 3" in refused.json()["detail"]
    async with device.http() as http:
        listed = (await http.get("/v1/loadbalancers")).json()["loadbalancers"]
    assert [(i["generation"], i["digest"]) for i in listed] == [(3, config_digest(render(newer)))]
    assert {await answers(f"http://{address}:{PORT}/") for _ in range(4)} == {"b0"}


async def test_a_config_haproxy_rejects_keeps_the_previous_one_serving(
    device: Device, backends: list[Backend]
) -> None:
    address = vip()
    lb = spec(address, backends)
    assert (await put(device, lb)).status_code == 200
    async with device.http() as http:
        broken = await http.put(
            f"/v1/loadbalancers/{lb.id}",
            json={
                "generation": 2,
                "config": render(lb) + "backend x\n    server s 127.0.0.1:99999\n",
            },
        )
    assert broken.status_code == 422
    assert "invalid port '99999'" in broken.json()["detail"], "HAProxy's own words"
    assert str(device.state_dir) not in broken.json()["detail"]
    folder = device.instance_dir(str(lb.id))
    assert "127.0.0.1:99999" in (folder / "haproxy.cfg.failed").read_text()
    assert "127.0.0.1:99999" not in (folder / "haproxy.cfg").read_text()
    assert await answers(f"http://{address}:{PORT}/") in NAMES

    # A port another process holds: `haproxy -c` accepts it, the reload fails.
    with socket.socket() as squatter:
        squatter.bind((address, 9090))
        squatter.listen()
        bigger = lb.model_copy(
            update={
                "listeners": [
                    *lb.listeners,
                    lb.listeners[0].model_copy(update={"id": uuid.uuid4(), "protocol_port": 9090}),
                ]
            }
        )
        refused = await put(device, bigger)
    assert refused.status_code == 422
    assert "cannot bind socket" in refused.json()["detail"]
    assert ":9090" not in device.config(str(lb.id))
    assert await answers(f"http://{address}:{PORT}/") in NAMES
    async with device.http() as http:
        listed = (await http.get("/v1/loadbalancers")).json()["loadbalancers"]
    assert listed[0]["digest"] == config_digest(render(lb))


async def test_a_killed_instance_is_restarted(device: Device, backends: list[Backend]) -> None:
    address = vip()
    lb = spec(address, backends)
    assert (await put(device, lb)).status_code == 200
    master = device.master_pid(str(lb.id))
    workers = [pid for pid in device.pids(str(lb.id)) if pid != master]
    os.kill(workers[0], signal.SIGKILL)

    async def restarted() -> bool | None:
        try:
            pid = device.master_pid(str(lb.id))
        except (FileNotFoundError, ValueError):
            return None
        if pid == master or not device.pids(str(lb.id)):
            return None
        try:
            return True if await answers(f"http://{address}:{PORT}/") in NAMES else None
        except httpx.TransportError:
            return None

    await eventually(restarted, timeout=5, what="the instance restarted and serving")


async def test_a_restarted_daemon_adopts_running_instances_with_no_gap(
    device: Device, backends: list[Backend], log_dir: Path
) -> None:
    address = vip()
    lb = spec(address, backends)
    assert (await put(device, lb)).status_code == 200
    master = device.master_pid(str(lb.id))
    failures = 0
    served = 0

    async def traffic(stop: asyncio.Event) -> None:
        nonlocal failures, served
        async with httpx.AsyncClient(timeout=2) as http:
            for _ in range(5000):
                if stop.is_set():
                    return
                try:
                    await http.get(f"http://{address}:{PORT}/")
                    served += 1
                except httpx.TransportError:
                    failures += 1
                await asyncio.sleep(0.002)

    stop = asyncio.Event()
    load = asyncio.create_task(traffic(stop))
    device.kill()
    successor = Device(log_dir)
    successor.state_dir.rmdir()
    successor.state_dir = device.state_dir
    successor.argv[-1] = str(device.state_dir)
    successor.start()
    try:
        await successor.wait_ready()
        assert f"adopted HAProxy for {lb.id} (master {master})" in successor.log()
        assert device.master_pid(str(lb.id)) == master
        stop.set()
        await load
        assert failures == 0 and served > 0
    finally:
        stop.set()
        successor.purge()


async def test_delete_stops_the_vip_and_leaves_nothing(
    device: Device, backends: list[Backend]
) -> None:
    address = vip()
    lb = spec(address, backends)
    assert (await put(device, lb)).status_code == 200
    assert device.pids(str(lb.id))
    async with device.http() as http:
        assert (await http.delete(f"/v1/loadbalancers/{lb.id}")).status_code == 204
        assert (await http.delete(f"/v1/loadbalancers/{lb.id}")).status_code == 204
    with pytest.raises(httpx.ConnectError):
        await answers(f"http://{address}:{PORT}/")
    assert device.pids(str(lb.id)) == []
    assert not device.instance_dir(str(lb.id)).exists()


@pytest.mark.parametrize(
    ("env", "argv", "named"),
    [
        ({}, [], "LBAAS_DEVICE_SECRET"),
        ({"LBAAS_DEVICE_SECRET": "tiny-secret"}, [], "LBAAS_DEVICE_SECRET"),
        ({"LBAAS_DEVICE_SECRET": "s" * 20}, ["--state-dir", "/tmp/" + "d" * 80], "STATE_DIR"),
        (
            {"LBAAS_DEVICE_SECRET": "s" * 20, "LBAAS_DEVICE_SUPERVISE_INTERVAL": "0"},
            [],
            "LBAAS_DEVICE_SUPERVISE_INTERVAL",
        ),
    ],
)
def test_a_bad_setting_stops_the_daemon_naming_it(
    env: dict[str, str], argv: list[str], named: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LBAAS_DEVICE_")}
    finished = subprocess.run(
        [str(BIN / "lbaas-device"), "--listen", "127.0.0.1:1", *argv],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert finished.returncode != 0
    assert named in finished.stderr
    assert "tiny-secret" not in finished.stderr, "a secret is never printed back"
