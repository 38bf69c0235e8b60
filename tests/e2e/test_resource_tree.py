"""The whole Load Balancer v2 tree through the 202 → agent → result path."""

import asyncio
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.support.client import LbaasClient
from tests.support.stack import eventually

API = "/v2/lbaas"


def received(noop_dir: Path, lb_id: str, generation: int) -> dict[str, Any]:
    """The spec the noop driver was given for that generation."""
    spec: dict[str, Any] = json.loads((noop_dir / lb_id / f"{generation}.json").read_text())
    return spec


async def _accepted(response: Any, key: str) -> dict[str, Any]:
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()[key]
    return body


async def _statuses(client: LbaasClient, lb_id: str) -> list[str]:
    """Every provisioning status in the load balancer's status tree."""
    tree = (await client.http.get(f"{API}/loadbalancers/{lb_id}/status")).json()["statuses"]
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "provisioning_status" in node:
                found.append(node["provisioning_status"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(tree)
    return found


async def test_tree_built_step_by_step_sends_the_whole_tree_each_time(
    client: LbaasClient, noop_dir: Path
) -> None:
    device = await client.create_device("noop")
    lb = await _accepted(await client.create_lb(device), "loadbalancer")
    await client.wait_lb(lb["id"], ("ACTIVE",))

    listener = await _accepted(
        await client.http.post(
            f"{API}/listeners",
            json={
                "listener": {
                    "loadbalancer_id": lb["id"],
                    "protocol": "HTTP",
                    "protocol_port": 80,
                    "insert_headers": {"X-Forwarded-For": "true"},
                }
            },
        ),
        "listener",
    )
    assert listener["provisioning_status"] == "PENDING_CREATE"
    await client.wait_lb(lb["id"], ("ACTIVE",))
    pool = await _accepted(
        await client.http.post(
            f"{API}/pools",
            json={
                "pool": {
                    "listener_id": listener["id"],
                    "protocol": "HTTP",
                    "lb_algorithm": "LEAST_CONNECTIONS",
                    "session_persistence": {"type": "APP_COOKIE", "cookie_name": "sid"},
                }
            },
        ),
        "pool",
    )
    await client.wait_lb(lb["id"], ("ACTIVE",))
    for port in (8080, 8081):
        await _accepted(
            await client.http.post(
                f"{API}/pools/{pool['id']}/members",
                json={"member": {"address": "127.0.0.10", "protocol_port": port, "weight": 5}},
            ),
            "member",
        )
        await client.wait_lb(lb["id"], ("ACTIVE",))
    monitor = await _accepted(
        await client.http.post(
            f"{API}/healthmonitors",
            json={
                "healthmonitor": {
                    "pool_id": pool["id"],
                    "type": "HTTP",
                    "delay": 5,
                    "timeout": 3,
                    "max_retries": 3,
                    "url_path": "/health",
                }
            },
        ),
        "healthmonitor",
    )
    final = await client.wait_lb(lb["id"], ("ACTIVE",))
    assert final["generation"] == 6

    assert [len(received(noop_dir, lb["id"], g)["listeners"]) for g in range(1, 7)] == [
        0,
        1,
        1,
        1,
        1,
        1,
    ]
    spec = received(noop_dir, lb["id"], 6)
    assert spec["listeners"][0]["default_pool_id"] == pool["id"]
    assert spec["listeners"][0]["insert_headers"] == {"X-Forwarded-For": "true"}
    (pool_spec,) = spec["pools"]
    assert pool_spec["session_persistence"] == {"type": "APP_COOKIE", "cookie_name": "sid"}
    assert sorted(m["protocol_port"] for m in pool_spec["members"]) == [8080, 8081]
    assert pool_spec["healthmonitor"]["id"] == monitor["id"]
    assert pool_spec["healthmonitor"]["http_method"] == "GET"
    assert set(await _statuses(client, lb["id"])) == {"ACTIVE"}
    shown = (await client.http.get(f"{API}/pools/{pool['id']}")).json()["pool"]
    assert shown["healthmonitor_id"] == monitor["id"]
    assert [x["id"] for x in shown["listeners"]] == [listener["id"]]
    assert len(shown["members"]) == 2


def _tree_body(device: dict[str, Any], members: int = 2) -> dict[str, Any]:
    return {
        "name": "tree",
        "provider": device["driver"],
        "device_id": device["id"],
        "listeners": [
            {
                "protocol": "HTTP",
                "protocol_port": 80,
                "default_pool": {
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [
                        {"address": f"127.0.1.{i}", "protocol_port": 80} for i in range(members)
                    ],
                    "healthmonitor": {"type": "TCP", "delay": 2, "timeout": 1, "max_retries": 2},
                },
            },
            {"protocol": "TCP", "protocol_port": 443},
        ],
        "pools": [{"protocol": "TCP", "lb_algorithm": "SOURCE_IP"}],
    }


async def test_single_call_create_is_one_operation(client: LbaasClient, noop_dir: Path) -> None:
    device = await client.create_device("noop")
    response = await client.http.post(
        f"{API}/loadbalancers", json={"loadbalancer": _tree_body(device)}
    )
    lb = await _accepted(response, "loadbalancer")
    assert len(lb["listeners"]) == 2 and len(lb["pools"]) == 2

    shown = await client.wait_lb(lb["id"], ("ACTIVE",))
    for related in ("listeners", "pools", "vip_port_id"):
        assert lb[related] == shown[related], "the 202 lists what a read shows, in its order"
    assert len(await client.operations(lb["id"])) == 1
    assert set(await _statuses(client, lb["id"])) == {"ACTIVE"}
    spec = received(noop_dir, lb["id"], 1)
    assert sorted(x["protocol_port"] for x in spec["listeners"]) == [80, 443]
    assert len(spec["pools"]) == 2
    assert sum(len(p["members"]) for p in spec["pools"]) == 2
    assert sum(p["healthmonitor"] is not None for p in spec["pools"]) == 1


async def test_a_tree_with_a_member_twice_is_refused_whole(client: LbaasClient) -> None:
    device = await client.create_device("noop")
    body = _tree_body(device, members=3)
    members = body["listeners"][0]["default_pool"]["members"]
    members.append(dict(members[1]))
    body["name"] = f"twice-{device['id']}"
    response = await client.http.post(f"{API}/loadbalancers", json={"loadbalancer": body})
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert f"already has a member {members[1]['address']} port 80" in response.json()["detail"]
    named = await client.http.get(f"{API}/loadbalancers", params={"name": body["name"]})
    assert named.json()["loadbalancers"] == []


async def test_every_level_refuses_changes_while_pending(client: LbaasClient) -> None:
    device = await client.create_device("sim", url="sim://pending-tree?latency=3")
    body = _tree_body(device)
    lb = await _accepted(
        await client.http.post(f"{API}/loadbalancers", json={"loadbalancer": body}), "loadbalancer"
    )
    pools = (await client.http.get(f"{API}/pools", params={"loadbalancer_id": lb["id"]})).json()
    pool_id = next(p["id"] for p in pools["pools"] if p["members"])
    members = (await client.http.get(f"{API}/pools/{pool_id}/members")).json()["members"]
    monitor_id = pools["pools"][0]["healthmonitor_id"] or pools["pools"][1]["healthmonitor_id"]
    listener_id = lb["listeners"][0]["id"]

    attempts = [
        client.http.put(f"{API}/loadbalancers/{lb['id']}", json={"loadbalancer": {"name": "x"}}),
        client.http.post(
            f"{API}/listeners",
            json={
                "listener": {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 8443}
            },
        ),
        client.http.put(f"{API}/listeners/{listener_id}", json={"listener": {"name": "x"}}),
        client.http.put(f"{API}/pools/{pool_id}", json={"pool": {"name": "x"}}),
        client.http.post(
            f"{API}/pools/{pool_id}/members",
            json={"member": {"address": "127.0.9.9", "protocol_port": 80}},
        ),
        client.http.put(f"{API}/pools/{pool_id}/members", json={"members": []}),
        client.http.delete(f"{API}/pools/{pool_id}/members/{members[0]['id']}"),
        client.http.put(f"{API}/healthmonitors/{monitor_id}", json={"healthmonitor": {"delay": 9}}),
        client.http.delete(f"{API}/loadbalancers/{lb['id']}?cascade=true"),
    ]
    responses = await asyncio.gather(*attempts)
    assert [r.status_code for r in responses] == [409] * len(attempts), [r.text for r in responses]
    assert all(lb["id"] in r.json()["detail"] for r in responses)
    await client.wait_lb(lb["id"], ("ACTIVE",))
    assert len(await client.operations(lb["id"])) == 1


async def test_batch_member_update_is_one_operation(client: LbaasClient, noop_dir: Path) -> None:
    device = await client.create_device("noop")
    lb = await _accepted(
        await client.http.post(
            f"{API}/loadbalancers", json={"loadbalancer": _tree_body(device, 10)}
        ),
        "loadbalancer",
    )
    await client.wait_lb(lb["id"], ("ACTIVE",))
    pools = (await client.http.get(f"{API}/pools", params={"loadbalancer_id": lb["id"]})).json()
    pool_id = next(p["id"] for p in pools["pools"] if p["members"])
    before = {
        m["address"]: m
        for m in (await client.http.get(f"{API}/pools/{pool_id}/members")).json()["members"]
    }

    kept: list[dict[str, Any]] = [
        {"address": f"127.0.1.{i}", "protocol_port": 80} for i in range(3, 10)
    ]
    kept[0]["weight"] = 7
    kept[1]["backup"] = True
    wanted = [
        *kept[:5],
        {"address": "127.0.2.1", "protocol_port": 80},
        {"address": "127.0.2.2", "protocol_port": 81},
    ]
    assert len(wanted) == 7
    response = await client.http.put(f"{API}/pools/{pool_id}/members", json={"members": wanted})
    assert response.status_code == 202, response.text
    statuses = {m["address"]: m["provisioning_status"] for m in response.json()["members"]}
    assert statuses["127.0.1.0"] == "PENDING_DELETE"
    assert statuses["127.0.1.3"] == "PENDING_UPDATE"
    assert statuses["127.0.1.5"] == "ACTIVE"
    assert statuses["127.0.2.1"] == "PENDING_CREATE"

    await client.wait_lb(lb["id"], ("ACTIVE",))
    after = {
        m["address"]: m
        for m in (await client.http.get(f"{API}/pools/{pool_id}/members")).json()["members"]
    }
    assert sorted(after) == sorted(str(m["address"]) for m in wanted)
    assert after["127.0.1.3"]["weight"] == 7 and after["127.0.1.4"]["backup"] is True
    assert after["127.0.1.5"]["id"] == before["127.0.1.5"]["id"]
    assert {m["provisioning_status"] for m in after.values()} == {"ACTIVE"}
    operations = await client.operations(lb["id"])
    assert [op["action"] for op in operations] == ["create", "batch_update"]
    spec = received(noop_dir, lb["id"], 2)
    assert sorted(m["address"] for p in spec["pools"] for m in p["members"]) == sorted(after)


async def test_cascade_delete_and_delete_without_cascade(client: LbaasClient) -> None:
    device = await client.create_device("noop")
    lb = await _accepted(
        await client.http.post(f"{API}/loadbalancers", json={"loadbalancer": _tree_body(device)}),
        "loadbalancer",
    )
    await client.wait_lb(lb["id"], ("ACTIVE",))
    refused = await client.http.delete(f"{API}/loadbalancers/{lb['id']}")
    assert refused.status_code == 409
    assert "cascade" in refused.json()["detail"]

    deleting = await client.http.delete(f"{API}/loadbalancers/{lb['id']}?cascade=True")
    assert deleting.status_code == 202
    await client.wait_gone(lb["id"])
    for collection in ("listeners", "pools", "healthmonitors"):
        listed = (
            await client.http.get(
                f"{API}/{collection}",
                params={"loadbalancer_id": lb["id"]} if collection != "healthmonitors" else None,
            )
        ).json()
        assert all(
            item.get("loadbalancers", [{}])[0].get("id") != lb["id"] for item in listed[collection]
        )
    assert len(await client.operations(lb["id"])) == 2


async def test_failed_tree_goes_to_error_and_can_be_deleted(client: LbaasClient) -> None:
    device = await client.create_device("sim", url="sim://failing-tree?fail=1")
    lb = await _accepted(
        await client.http.post(f"{API}/loadbalancers", json={"loadbalancer": _tree_body(device)}),
        "loadbalancer",
    )
    failed = await client.wait_lb(lb["id"])
    assert failed["provisioning_status"] == "ERROR"
    assert set(await _statuses(client, lb["id"])) == {"ERROR"}

    assert (
        await client.http.delete(f"{API}/loadbalancers/{lb['id']}?cascade=true")
    ).status_code == 202
    await client.wait_gone(lb["id"])


async def test_child_failure_marks_the_child_and_frees_the_load_balancer(
    client: LbaasClient,
) -> None:
    device = await client.create_device("sim", url="sim://flaky-child?latency=0")
    lb = await _accepted(await client.create_lb(device), "loadbalancer")
    await client.wait_lb(lb["id"], ("ACTIVE",))
    updated = await client.http.put(
        f"{API}/devices/{device['id']}",
        json={"device": {"management_url": "sim://flaky-child?fail=1"}},
    )
    assert updated.status_code == 200
    listener = await _accepted(
        await client.http.post(
            f"{API}/listeners",
            json={
                "listener": {"loadbalancer_id": lb["id"], "protocol": "TCP", "protocol_port": 25}
            },
        ),
        "listener",
    )
    after = await client.wait_lb(lb["id"], ("ACTIVE",))
    assert after["status_reason"] is None
    shown = (await client.http.get(f"{API}/listeners/{listener['id']}")).json()["listener"]
    assert shown["provisioning_status"] == "ERROR"
    assert "simulated failure" in shown["status_reason"]


_ONE_LISTENER = [{"protocol": "TCP", "protocol_port": 80}]


async def test_long_poll_returns_when_the_result_arrives(client: LbaasClient) -> None:
    device = await client.create_device("sim", url="sim://long-poll?latency=1.5")
    lb = await _accepted(await client.create_lb(device, listeners=_ONE_LISTENER), "loadbalancer")

    response = await client.http.get(
        f"{API}/loadbalancers/{lb['id']}", params={"wait_for": "ACTIVE", "timeout": 30}, timeout=40
    )
    answered = time.time()
    assert response.json()["loadbalancer"]["provisioning_status"] == "ACTIVE"
    assert response.json()["loadbalancer"]["listeners"] == lb["listeners"] != []
    operation = (await client.operations(lb["id"]))[0]
    result_applied = datetime.fromisoformat(operation["completed_at"]).timestamp()
    assert 0 <= answered - result_applied < 1.0


async def test_long_poll_gives_up_at_its_timeout(client: LbaasClient) -> None:
    device = await client.create_device("sim", url="sim://long-poll-slow?latency=5")
    lb = await _accepted(await client.create_lb(device, listeners=_ONE_LISTENER), "loadbalancer")
    start = asyncio.get_running_loop().time()
    response = await client.http.get(
        f"{API}/loadbalancers/{lb['id']}", params={"wait_for": "ACTIVE", "timeout": 0.5}
    )
    waited = asyncio.get_running_loop().time() - start
    assert response.json()["loadbalancer"]["provisioning_status"] == "PENDING_CREATE"
    assert response.json()["loadbalancer"]["listeners"] == lb["listeners"] != []
    assert 0.5 <= waited < 3


async def test_stats_are_what_the_device_last_reported(client: LbaasClient, sim_dir: Path) -> None:
    device = await client.create_device("sim", url="sim://stats-1")
    lb = await _accepted(await client.create_lb(device), "loadbalancer")
    await client.wait_lb(lb["id"], ("ACTIVE",))
    path = f"{API}/loadbalancers/{lb['id']}/stats"
    assert (await client.http.get(path)).json()["stats"] == {
        "active_connections": 0,
        "bytes_in": 0,
        "bytes_out": 0,
        "request_errors": 0,
        "total_connections": 0,
    }
    traffic = {
        "active_connections": 3,
        "bytes_in": 1200,
        "bytes_out": 64000,
        "request_errors": 1,
        "total_connections": 42,
    }
    (sim_dir / "stats-1" / "counters.json").write_text(json.dumps({lb["id"]: traffic}))

    async def reported() -> dict[str, int] | None:
        stats: dict[str, int] = (await client.http.get(path)).json()["stats"]
        return stats if stats == traffic else None

    assert await eventually(reported, timeout=15, what="the sim's counters in /stats") == traffic
    device_now = (await client.http.get(f"{API}/devices/{device['id']}")).json()["device"]
    assert device_now["operating_status"] == "ONLINE"
