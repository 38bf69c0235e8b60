"""Load balancers that carry real traffic: API → agent → ``lbaas-device`` → HAProxy → backends.

Every test drives the session's API and agent; the HAProxy device and the
backends (tiny servers on 127.0.0.1) are this module's. What the API reports
(operating status, stats) is checked against what the traffic shows.
"""

import asyncio
import contextlib
import copy
import os
import signal
import socket
from collections import Counter
from collections.abc import Awaitable
from typing import Any

import httpx
import pytest

from tests.support.client import LbaasClient
from tests.support.haproxy import (
    MONITOR,
    PORT,
    Backend,
    Device,
    EchoBackend,
    create_web,
    member_body,
)
from tests.support.stack import eventually

pytestmark = pytest.mark.slow

API = "/v2/lbaas"


async def tree(client: LbaasClient, lb: dict[str, Any]) -> dict[str, Any]:
    """The load balancer's listener, pool and members, as the API shows them."""
    listener_id = lb["listeners"][0]["id"]
    listener = (await client.http.get(f"{API}/listeners/{listener_id}")).json()["listener"]
    pool_id = listener["default_pool_id"]
    pool = (await client.http.get(f"{API}/pools/{pool_id}")).json()["pool"]
    members = (await client.http.get(f"{API}/pools/{pool_id}/members")).json()["members"]
    return {"listener": listener, "pool": pool, "members": members}


def member_of(members: list[dict[str, Any]], backend: Backend) -> dict[str, Any]:
    return next(m for m in members if m["protocol_port"] == backend.port)


async def hits(
    url: str, count: int, *, http: httpx.AsyncClient | None = None, fresh: bool = True
) -> Counter[str]:
    """Which backend answered each of ``count`` requests (a new connection each, by default)."""
    answered: Counter[str] = Counter()
    headers = {"Connection": "close"} if fresh else {}
    async with contextlib.AsyncExitStack() as stack:
        if http is None:
            http = await stack.enter_async_context(httpx.AsyncClient(timeout=5))
        for _ in range(count):
            response = await http.get(url, headers=headers)
            assert response.status_code == 200, response.text
            answered[response.text] += 1
    return answered


async def settle(
    client: LbaasClient, lb: dict[str, Any], change: Awaitable[httpx.Response]
) -> None:
    response = await change
    assert response.status_code == 202, response.text
    await client.wait_lb(lb["id"], ("ACTIVE",))


async def member_status(client: LbaasClient, pool_id: str, member_id: str) -> str:
    response = await client.http.get(f"{API}/pools/{pool_id}/members/{member_id}")
    status: str = response.json()["member"]["operating_status"]
    return status


async def test_traffic_is_spread_evenly_over_three_members(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend]
) -> None:
    lb = await create_web(client, registered, backends)
    answered = await hits(f"http://{lb['vip_address']}:{PORT}/", 300)
    assert sorted(answered) == ["b0", "b1", "b2"]
    assert all(80 <= n <= 120 for n in answered.values()), answered
    assert [b.hits for b in backends] == [answered["b0"], answered["b1"], answered["b2"]]


async def test_a_stopped_member_shows_error_and_gets_no_traffic_until_it_is_back(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend]
) -> None:
    lb = await create_web(client, registered, backends)
    objects = await tree(client, lb)
    pool_id = objects["pool"]["id"]
    down = member_of(objects["members"], backends[2])

    async def shows(status: str) -> bool | None:
        return True if await member_status(client, pool_id, down["id"]) == status else None

    await eventually(lambda: shows("ONLINE"), timeout=15, what="the member ONLINE")
    await backends[2].stop()
    await eventually(lambda: shows("ERROR"), timeout=15, what="the stopped member in ERROR")
    objects = await tree(client, lb)
    assert objects["pool"]["operating_status"] == "DEGRADED"
    assert objects["listener"]["operating_status"] == "DEGRADED"
    assert (await client.get_lb(lb["id"])).json()["loadbalancer"]["operating_status"] == "DEGRADED"
    answered = await hits(f"http://{lb['vip_address']}:{PORT}/", 40)
    assert set(answered) == {"b0", "b1"}

    await backends[2].start()
    await eventually(lambda: shows("ONLINE"), timeout=15, what="the member ONLINE again")
    assert (await tree(client, lb))["pool"]["operating_status"] == "ONLINE"


async def test_weight_zero_and_a_disabled_member_get_no_new_requests(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend]
) -> None:
    lb = await create_web(client, registered, backends)
    objects = await tree(client, lb)
    pool_id = objects["pool"]["id"]
    url = f"http://{lb['vip_address']}:{PORT}/"
    drained = member_of(objects["members"], backends[0])
    disabled = member_of(objects["members"], backends[1])
    path = f"{API}/pools/{pool_id}/members"

    await settle(
        client, lb, client.http.put(f"{path}/{drained['id']}", json={"member": {"weight": 0}})
    )
    assert "b0" not in await hits(url, 30)
    await eventually(
        lambda: _is(member_status(client, pool_id, drained["id"]), "DRAINING"),
        timeout=10,
        what="the drained member DRAINING",
    )
    await settle(
        client,
        lb,
        client.http.put(f"{path}/{disabled['id']}", json={"member": {"admin_state_up": False}}),
    )
    assert set(await hits(url, 30)) == {"b2"}
    assert await member_status(client, pool_id, disabled["id"]) == "OFFLINE"


async def _is(value: Awaitable[str], expected: str) -> bool | None:
    return True if await value == expected else None


@pytest.mark.parametrize("persistence", ["SOURCE_IP", "HTTP_COOKIE"])
async def test_session_persistence_keeps_a_client_on_one_member(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend], persistence: str
) -> None:
    lb = await create_web(
        client, registered, backends, pool={"session_persistence": {"type": persistence}}
    )
    async with httpx.AsyncClient(timeout=5) as http:
        answered = await hits(f"http://{lb['vip_address']}:{PORT}/", 30, http=http)
    assert len(answered) == 1, answered


async def test_a_pool_update_under_keep_alive_load_drops_no_request(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend]
) -> None:
    lb = await create_web(client, registered, backends)
    pool_id = (await tree(client, lb))["pool"]["id"]
    url = f"http://{lb['vip_address']}:{PORT}/"
    failures: list[str] = []
    done = 0

    async def worker() -> None:
        nonlocal done
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(250):
                try:
                    response = await http.get(url)
                    if response.status_code != 200:
                        failures.append(f"{response.status_code}: {response.text[:80]}")
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                done += 1

    load = [asyncio.create_task(worker()) for _ in range(8)]
    reloads = 0
    algorithms = ["LEAST_CONNECTIONS", "ROUND_ROBIN"]
    while done < 2000 and reloads < 20:
        change = {"pool": {"lb_algorithm": algorithms[reloads % 2]}}
        await settle(client, lb, client.http.put(f"{API}/pools/{pool_id}", json=change))
        reloads += 1
    await asyncio.gather(*load)
    assert done == 2000
    assert failures == []
    assert reloads >= 3, "the load ended before the configuration was reloaded"


async def test_a_tcp_listener_carries_a_raw_echo(
    client: LbaasClient, registered: dict[str, Any]
) -> None:
    echo = EchoBackend()
    await echo.start()
    try:
        listener = {
            "protocol": "TCP",
            "protocol_port": 9000,
            "default_pool": {
                "protocol": "TCP",
                "lb_algorithm": "LEAST_CONNECTIONS",
                "members": [member_body(echo)],
            },
        }
        response = await client.create_lb(registered, listeners=[listener])
        lb = await client.wait_lb(response.json()["loadbalancer"]["id"], ("ACTIVE",))
        reader, writer = await asyncio.open_connection(lb["vip_address"], 9000)
        payload = b"\x00raw bytes \xff through HAProxy\r\n" * 100
        writer.write(payload)
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(len(payload)), 5) == payload
        writer.close()
    finally:
        await echo.stop()


async def test_stats_count_the_requests_across_a_reload(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend]
) -> None:
    lb = await create_web(client, registered, backends)
    listener_id = lb["listeners"][0]["id"]
    pool_id = (await tree(client, lb))["pool"]["id"]
    url = f"http://{lb['vip_address']}:{PORT}/"

    async def counted(expected: int) -> bool | None:
        for path in (f"loadbalancers/{lb['id']}", f"listeners/{listener_id}"):
            stats = (await client.http.get(f"{API}/{path}/stats")).json()["stats"]
            if stats["total_connections"] != expected:
                return None
        return True

    await hits(url, 20)
    await eventually(lambda: counted(20), timeout=15, what="20 connections in /stats")
    await hits(url, 7)
    await settle(
        client, lb, client.http.put(f"{API}/pools/{pool_id}", json={"pool": {"name": "reloaded"}})
    )
    await hits(url, 8)
    await eventually(lambda: counted(35), timeout=15, what="35 connections across the reload")
    stats = (await client.http.get(f"{API}/loadbalancers/{lb['id']}/stats")).json()["stats"]
    assert stats["bytes_in"] > 0 and stats["bytes_out"] > 0


async def test_delete_stops_the_vip_and_leaves_no_process_or_file(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend], device: Device
) -> None:
    lb = await create_web(client, registered, backends)
    url = f"http://{lb['vip_address']}:{PORT}/"
    assert await hits(url, 3)
    assert device.pids(lb["id"])
    response = await client.http.delete(f"{API}/loadbalancers/{lb['id']}?cascade=true")
    assert response.status_code == 202, response.text
    await client.wait_gone(lb["id"])
    with pytest.raises(httpx.ConnectError):
        await hits(url, 1)
    assert device.pids(lb["id"]) == []
    assert not device.instance_dir(lb["id"]).exists()


async def test_a_config_haproxy_rejects_is_an_error_with_its_message_and_keeps_serving(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend], device: Device
) -> None:
    lb = await create_web(client, registered, backends)
    url = f"http://{lb['vip_address']}:{PORT}/"
    with socket.socket() as squatter:
        squatter.bind((lb["vip_address"], 9090))
        squatter.listen()
        response = await client.http.post(
            f"{API}/listeners",
            json={
                "listener": {"loadbalancer_id": lb["id"], "protocol": "HTTP", "protocol_port": 9090}
            },
        )
        assert response.status_code == 202, response.text
        listener_id = response.json()["listener"]["id"]

        async def failed() -> dict[str, Any] | None:
            got = (await client.http.get(f"{API}/listeners/{listener_id}")).json()["listener"]
            return got if got["provisioning_status"] == "ERROR" else None

        listener = await eventually(failed, what="the listener in ERROR")
    assert "cannot bind socket" in listener["status_reason"]
    assert "Address already in use" in listener["status_reason"]
    assert str(device.state_dir) not in listener["status_reason"]
    assert set(await hits(url, 6)) <= {"b0", "b1", "b2"}
    assert ":9090" not in device.config(lb["id"])


async def test_a_load_balancer_in_error_is_deleted_from_the_device_too(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend], device: Device
) -> None:
    vip = registered["vip_cidr"].replace(".0/24", ".250")
    with socket.socket() as squatter:
        squatter.bind((vip, PORT))
        squatter.listen()
        listener = {"protocol": "HTTP", "protocol_port": PORT}
        response = await client.create_lb(registered, vip_address=vip, listeners=[listener])
        lb = await client.wait_lb(response.json()["loadbalancer"]["id"])
    assert lb["provisioning_status"] == "ERROR"
    assert "cannot bind socket" in lb["status_reason"]
    response = await client.http.delete(f"{API}/loadbalancers/{lb['id']}?cascade=true")
    assert response.status_code == 202, response.text
    await client.wait_gone(lb["id"])
    assert not device.instance_dir(lb["id"]).exists()
    assert device.pids(lb["id"]) == []


async def test_a_killed_haproxy_is_restarted_by_the_device(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend], device: Device
) -> None:
    lb = await create_web(client, registered, backends)
    url = f"http://{lb['vip_address']}:{PORT}/"
    master = device.master_pid(lb["id"])
    for pid in device.pids(lb["id"]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    async def serving_again() -> bool | None:
        with contextlib.suppress(httpx.HTTPError, AssertionError, FileNotFoundError, ValueError):
            if device.master_pid(lb["id"]) != master and await hits(url, 1):
                return True
        return None

    await eventually(serving_again, timeout=5, what="HAProxy restarted and serving")


ALLOWED_BUT_DANGEROUS = [
    "#comment",
    '"quoted"',
    "'quoted'",
    "${LBAAS_DEVICE_SECRET}",
    "%[env(HOME)]",
    "back\\slash",
    "naïve ünïcode ✓",
    "listen pwned",
]


def _with(body: dict[str, Any], where: str, field: str, value: object) -> dict[str, Any]:
    """A copy of a single-call create body with ``value`` put in one field of one object."""
    changed = copy.deepcopy(body)
    listener = changed["listeners"][0]
    pool = listener["default_pool"]
    objects = {
        "loadbalancer": changed,
        "listener": listener,
        "pool": pool,
        "member": pool["members"][0],
        "healthmonitor": pool["healthmonitor"],
    }
    objects[where][field] = value
    return changed


async def test_injection_attempts_reach_neither_the_configuration_nor_the_process(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend], device: Device
) -> None:
    body: dict[str, Any] = {
        "name": "web",
        "provider": "haproxy",
        "device_id": registered["id"],
        "listeners": [
            {
                "protocol": "HTTP",
                "protocol_port": PORT,
                "default_pool": {
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [member_body(backends[0])],
                    "healthmonitor": MONITOR,
                },
            }
        ],
    }
    path_attempts = [
        "/a\nlisten pwned",
        "/a\r\nx",
        "/a\x00",
        "/a #",
        '/a"',
        "/${LBAAS_DEVICE_SECRET}",
        "/%[env(HOME)]",
        "/a\\b",
        "/" + "a" * 300,
        "/é",
    ]
    attempts = [
        *(("healthmonitor", "url_path", value) for value in path_attempts),
        ("healthmonitor", "expected_codes", "200\nlisten x"),
        ("healthmonitor", "expected_codes", "200 #"),
        ("healthmonitor", "http_method", "GET\n"),
        ("member", "address", "127.0.0.1\n"),
        ("member", "address", "127.0.0.1 #"),
        ("member", "address", "${HOST}"),
        ("member", "monitor_address", "fe80::1%lo"),
        ("pool", "session_persistence", {"type": "APP_COOKIE", "cookie_name": "a\nb"}),
        ("pool", "session_persistence", {"type": "APP_COOKIE", "cookie_name": "${X}"}),
        ("pool", "session_persistence", {"type": "APP_COOKIE", "cookie_name": "a b"}),
        ("listener", "allowed_cidrs", ["10.0.0.0/8\n"]),
        ("listener", "insert_headers", {"X-Forwarded-For": "true\n"}),
        ("listener", "insert_headers", {"X-Evil\nx": "true"}),
        *((where, "name", f"a{c}b") for where in ("loadbalancer", "pool") for c in "\n\r\x00"),
        ("loadbalancer", "description", "x" * 256),
    ]
    before = (await client.http.get(f"{API}/loadbalancers?fields=id")).json()["loadbalancers"]
    for where, field, value in attempts:
        refused = await client.http.post(
            f"{API}/loadbalancers", json={"loadbalancer": _with(body, where, field, value)}
        )
        assert refused.status_code == 400, (where, field, value, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    after = (await client.http.get(f"{API}/loadbalancers?fields=id")).json()["loadbalancers"]
    assert after == before

    text = " ".join(ALLOWED_BUT_DANGEROUS)
    accepted = body
    for where in ("loadbalancer", "listener", "pool", "member", "healthmonitor"):
        accepted = _with(accepted, where, "name", text)
    accepted = _with(accepted, "loadbalancer", "description", text)
    accepted = _with(accepted, "pool", "description", text)
    response = await client.http.post(f"{API}/loadbalancers", json={"loadbalancer": accepted})
    assert response.status_code == 202, response.text
    lb = await client.wait_lb(response.json()["loadbalancer"]["id"], ("ACTIVE",))
    config = device.config(lb["id"])
    for piece in ALLOWED_BUT_DANGEROUS:
        assert piece not in config
    assert await hits(f"http://{lb['vip_address']}:{PORT}/", 2) == Counter({"b0": 2})
    assert [
        v for v in device.environment(lb["id"]) if not v.startswith((b"PATH=", b"HAPROXY_"))
    ] == []


async def test_a_load_balancer_the_device_lost_is_applied_again(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend], device: Device
) -> None:
    lb = await create_web(client, registered, backends)
    url = f"http://{lb['vip_address']}:{PORT}/"
    async with device.http() as http:
        assert (await http.delete(f"/v1/loadbalancers/{lb['id']}")).status_code == 204
    with pytest.raises(httpx.ConnectError):
        await hits(url, 1)

    async def served() -> bool | None:
        with contextlib.suppress(httpx.HTTPError):
            return True if await hits(url, 3) else None
        return None

    await eventually(served, timeout=15, what="the lost load balancer applied again")
    assert (await client.get_lb(lb["id"])).json()["loadbalancer"]["provisioning_status"] == "ACTIVE"
