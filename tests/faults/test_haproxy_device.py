"""HAProxy devices under faults: the daemon killed, away for long, and an agent killed.

Each test has devices of its own; the first two use the session's API and agent.
"""

import asyncio
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.client import LbaasClient, authenticated
from tests.support.haproxy import PORT, Backend, create_web, member_body, running_device
from tests.support.stack import Agent, Api, eventually, isolated, running

pytestmark = pytest.mark.slow

API = "/v2/lbaas"


async def answers(url: str, count: int = 12) -> set[str]:
    async with httpx.AsyncClient(timeout=5) as http:
        return {(await http.get(url, headers={"Connection": "close"})).text for _ in range(count)}


async def pool_of(client: LbaasClient, lb: dict[str, Any]) -> str:
    listener_id = lb["listeners"][0]["id"]
    listener = (await client.http.get(f"{API}/listeners/{listener_id}")).json()["listener"]
    pool_id: str = listener["default_pool_id"]
    return pool_id


async def test_a_killed_device_daemon_adopts_its_instances_with_no_gap(
    client: LbaasClient, backends: list[Backend], log_dir: Path
) -> None:
    async with running_device(log_dir) as device:
        registered = await client.create_device(**device.registration())
        lb = await create_web(client, registered, backends)
        url = f"http://{lb['vip_address']}:{PORT}/"
        master = device.master_pid(lb["id"])
        failures: list[str] = []
        served = 0
        stop = asyncio.Event()

        async def traffic() -> None:
            nonlocal served
            async with httpx.AsyncClient(timeout=5) as http:
                for _ in range(20_000):
                    if stop.is_set():
                        return
                    try:
                        response = await http.get(url)
                        served += response.status_code == 200
                    except httpx.HTTPError as exc:
                        failures.append(repr(exc))
                    await asyncio.sleep(0.001)

        load = asyncio.create_task(traffic())
        device.kill()
        before = served
        device.start()
        await device.wait_ready()
        await eventually(
            lambda: _true(served > before + 50), timeout=10, what="traffic after the restart"
        )
        stop.set()
        await load
        assert failures == []
        assert f"adopted HAProxy for {lb['id']} (master {master})" in device.log()
        assert device.master_pid(lb["id"]) == master


async def _true(condition: bool) -> bool | None:
    return True if condition else None


async def test_a_device_away_is_offline_and_its_drift_is_repaired_when_it_is_back(
    client: LbaasClient, backends: list[Backend], log_dir: Path
) -> None:
    async with running_device(log_dir) as device:
        registered = await client.create_device(**device.registration())
        lb = await create_web(client, registered, backends[:2])
        url = f"http://{lb['vip_address']}:{PORT}/"
        pool_id = await pool_of(client, lb)

        async def device_status(status: str) -> bool | None:
            got = (await client.http.get(f"{API}/devices/{registered['id']}")).json()["device"]
            return True if got["operating_status"] == status else None

        # The session's agent reports on every device of the session: reports may queue.
        await eventually(lambda: device_status("ONLINE"), timeout=30, what="the device ONLINE")
        device.kill()
        await eventually(lambda: device_status("OFFLINE"), timeout=15, what="the device OFFLINE")
        shown = (await client.get_lb(lb["id"])).json()["loadbalancer"]
        assert shown["operating_status"] == "OFFLINE"
        assert await answers(url) == {"b0", "b1"}, "HAProxy serves on while its daemon is away"

        response = await client.http.post(
            f"{API}/pools/{pool_id}/members", json={"member": member_body(backends[2])}
        )
        assert response.status_code == 202, response.text
        member_id = response.json()["member"]["id"]

        async def member(status: str) -> dict[str, Any] | None:
            got = (await client.http.get(f"{API}/pools/{pool_id}/members/{member_id}")).json()
            return got["member"] if got["member"]["provisioning_status"] == status else None

        failed = await eventually(lambda: member("ERROR"), what="the member in ERROR")
        assert "infrastructure failure" in failed["status_reason"]
        assert device.secret not in failed["status_reason"]
        failed_operation = (await client.operations(lb["id"]))[-1]
        assert "unreachable" in failed_operation["error_detail"], "operators see the cause"
        assert device.secret not in failed_operation["error_detail"]

        device.start()
        await device.wait_ready()
        await eventually(lambda: member("ACTIVE"), timeout=20, what="the member repaired")
        await eventually(lambda: device_status("ONLINE"), timeout=10, what="the device back")
        assert (await client.get_lb(lb["id"])).json()["loadbalancer"]["provisioning_status"] == (
            "ACTIVE"
        )
        assert await answers(url, 30) == {"b0", "b1", "b2"}
        operations = await client.operations(lb["id"])
        assert operations[-1]["status"] == "SUCCEEDED"


async def test_two_agents_serve_two_devices_and_one_takes_over_when_the_other_dies(
    log_dir: Path, backends: list[Backend]
) -> None:
    async with (
        isolated() as isolation,
        running_device(log_dir) as first_device,
        running_device(log_dir) as second_device,
    ):
        api = Api(isolation.env(device_sync_interval=1), log_dir)
        env = isolation.agent_env(status_interval=0.5)
        first, second = Agent(env, log_dir, "agent-a"), Agent(env, log_dir, "agent-b")
        async with running(api, first, second), authenticated(api.url) as http:
            api.start()
            await api.wait_ready("/readyz")
            for agent in (first, second):
                agent.start()
                await eventually(partial(_consuming, agent), what=f"{agent.agent_id} consuming")
            client = LbaasClient(http)
            devices = [
                await client.create_device(**device.registration())
                for device in (first_device, second_device)
            ]
            lbs = [await create_web(client, device, backends[:1]) for device in devices]
            for lb in lbs:
                assert await answers(f"http://{lb['vip_address']}:{PORT}/") == {"b0"}
                assert (await client.operations(lb["id"]))[0]["agent_id"] == "agent-a"

            first.kill()
            await backends[0].stop()
            for lb in lbs:
                await eventually(
                    partial(_operating, client, lb, "ERROR"),
                    timeout=20,
                    what="health of both devices from the surviving agent, before any command",
                )
            await backends[0].start()
            for lb in lbs:
                pool_id = await pool_of(client, lb)
                response = await client.http.post(
                    f"{API}/pools/{pool_id}/members", json={"member": member_body(backends[1])}
                )
                assert response.status_code == 202, response.text
                await client.wait_lb(lb["id"], ("ACTIVE",), timeout=60)
                assert await answers(f"http://{lb['vip_address']}:{PORT}/", 20) == {"b0", "b1"}
                assert (await client.operations(lb["id"]))[-1]["agent_id"] == "agent-b"

            await backends[1].stop()
            for lb in lbs:
                await eventually(
                    partial(_operating, client, lb, "DEGRADED"),
                    timeout=20,
                    what="the surviving agent's health reports of both devices",
                )


async def _consuming(agent: Agent) -> bool | None:
    return True if "consuming 4 command queues" in agent.log() else None


async def _operating(client: LbaasClient, lb: dict[str, Any], status: str) -> bool | None:
    shown = (await client.get_lb(lb["id"])).json()["loadbalancer"]
    return True if shown["operating_status"] == status else None
