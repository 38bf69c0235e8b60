"""ETags, Idempotency-Key, pagination, filters and sorts, failover, allow-lists."""

import asyncio
from typing import Any

import pytest

from tests.support.client import LbaasClient

API = "/v2/lbaas"


async def _active_lb(client: LbaasClient, device: dict[str, Any] | None = None) -> dict[str, Any]:
    device = device or await client.create_device("noop")
    lb: dict[str, Any] = (await client.create_lb(device)).json()["loadbalancer"]
    return await client.wait_lb(lb["id"], ("ACTIVE",))


TREE = {
    "listeners": [
        {
            "protocol": "HTTP",
            "protocol_port": 80,
            "default_pool": {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"},
        }
    ]
}


@pytest.mark.parametrize("tree", [{}, TREE], ids=["bare", "tree"])
async def test_a_create_answers_what_a_read_shows(
    client: LbaasClient, tree: dict[str, Any]
) -> None:
    """The 202 is built from what the create wrote (timestamps and ETag included): a read
    while it is still pending shows the same."""
    device = await client.create_device("sim", url="sim://answered-as-read?latency=2")
    created = await client.create_lb(device, description="as read", tags=["a"], **tree)
    assert created.status_code == 202, created.text
    lb = created.json()["loadbalancer"]
    shown = await client.get_lb(lb["id"])
    assert shown.json()["loadbalancer"]["provisioning_status"] == "PENDING_CREATE"
    assert shown.json()["loadbalancer"] == lb
    assert shown.headers["etag"] == created.headers["etag"]
    port = (await client.http.get(f"/v2.0/ports/{lb['vip_port_id']}")).json()["port"]
    assert (port["device_id"], port["created_at"]) == (lb["id"], lb["created_at"])
    for listener in lb["listeners"]:
        shown = (await client.http.get(f"{API}/listeners/{listener['id']}")).json()["listener"]
        assert shown["created_at"] == lb["created_at"], "one transaction, one time"
    assert len(lb["listeners"]) == len(tree.get("listeners", ()))
    await client.wait_lb(lb["id"], ("ACTIVE",))


async def test_if_match_refuses_stale_writes(client: LbaasClient) -> None:
    lb = await _active_lb(client)
    path = f"{API}/loadbalancers/{lb['id']}"
    etag = (await client.http.get(path)).headers["etag"]

    stale = await client.http.put(
        path, json={"loadbalancer": {"name": "a"}}, headers={"If-Match": '"0-ACTIVE"'}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == "application/problem+json"
    assert etag in stale.json()["detail"]

    fresh = await client.http.put(
        path, json={"loadbalancer": {"name": "b"}}, headers={"If-Match": etag}
    )
    assert fresh.status_code == 202
    await client.wait_lb(lb["id"], ("ACTIVE",))
    gone_stale = await client.http.delete(path, headers={"If-Match": etag})
    assert gone_stale.status_code == 412
    assert (await client.get_lb(lb["id"])).json()["loadbalancer"]["name"] == "b"


async def test_idempotency_key_replays_the_first_answer(client: LbaasClient) -> None:
    device = await client.create_device("noop")
    body = {"loadbalancer": {"name": "once", "provider": "noop", "device_id": device["id"]}}
    headers = {"Idempotency-Key": "create-once-1"}

    first, second = [
        await client.http.post(f"{API}/loadbalancers", json=body, headers=headers) for _ in range(2)
    ]
    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["loadbalancer"]["id"] == second.json()["loadbalancer"]["id"]
    assert second.headers["x-operation-id"] == first.headers["x-operation-id"]
    assert second.headers["idempotent-replayed"] == "true"
    lb_id = first.json()["loadbalancer"]["id"]
    assert len(await client.operations(lb_id)) == 1
    named = (await client.http.get(f"{API}/loadbalancers", params={"name": "once"})).json()
    assert len(named["loadbalancers"]) == 1

    other = {"loadbalancer": {**body["loadbalancer"], "name": "twice"}}
    reused = await client.http.post(f"{API}/loadbalancers", json=other, headers=headers)
    assert reused.status_code == 422
    assert "Idempotency-Key" in reused.json()["detail"]


async def test_idempotency_key_under_concurrency_creates_once(client: LbaasClient) -> None:
    device = await client.create_device("noop")
    body = {"loadbalancer": {"name": "racy", "provider": "noop", "device_id": device["id"]}}
    responses = await asyncio.gather(
        *(
            client.http.post(f"{API}/loadbalancers", json=body, headers={"Idempotency-Key": "r-1"})
            for _ in range(5)
        )
    )
    ids = {r.json()["loadbalancer"]["id"] for r in responses if r.status_code == 202}
    assert len(ids) == 1
    assert {r.status_code for r in responses} <= {202, 409}
    named = (await client.http.get(f"{API}/loadbalancers", params={"name": "racy"})).json()
    assert len(named["loadbalancers"]) == 1


async def test_pagination_visits_every_object_once_both_ways(client: LbaasClient) -> None:
    device = await client.create_device("noop")
    lb = (
        await client.http.post(
            f"{API}/loadbalancers",
            json={
                "loadbalancer": {
                    "provider": "noop",
                    "device_id": device["id"],
                    "pools": [{"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}],
                }
            },
        )
    ).json()["loadbalancer"]
    await client.wait_lb(lb["id"], ("ACTIVE",))
    pool_id = lb["pools"][0]["id"]
    members = [
        {
            "address": f"127.1.{i // 200}.{i % 200 + 1}",
            "protocol_port": 80,
            "weight": i % 5,
            "name": f"m{i % 7}",
        }
        for i in range(250)
    ]
    response = await client.http.put(f"{API}/pools/{pool_id}/members", json={"members": members})
    assert response.status_code == 202, response.text
    await client.wait_lb(lb["id"], ("ACTIVE",))
    path = f"{API}/pools/{pool_id}/members"

    seen: list[str] = []
    url: str | None = f"{path}?limit=100"
    pages = 0
    while url is not None and pages < 10:
        page = (await client.http.get(url)).json()
        seen += [m["id"] for m in page["members"]]
        url = next((link["href"] for link in page["members_links"] if link["rel"] == "next"), None)
        pages += 1
    assert pages == 3 and len(seen) == 250 and len(set(seen)) == 250

    backwards: list[str] = []
    url = f"{path}?limit=100&page_reverse=true"
    pages = 0
    while url is not None and pages < 10:
        page = (await client.http.get(url)).json()
        backwards = [m["id"] for m in page["members"]] + backwards
        url = next(
            (link["href"] for link in page["members_links"] if link["rel"] == "previous"), None
        )
        pages += 1
    assert backwards == seen

    heavy = (await client.http.get(path, params={"weight": "4", "sort": "address:desc"})).json()
    assert len(heavy["members"]) == 50
    addresses = [m["address"] for m in heavy["members"]]
    assert addresses == sorted(addresses, key=lambda a: tuple(map(int, a.split("."))), reverse=True)
    assert {m["weight"] for m in heavy["members"]} == {4}

    slim = (await client.http.get(path, params={"limit": 3, "fields": "id,name"})).json()
    assert all(set(m) == {"id", "name"} for m in slim["members"])
    both = (await client.http.get(path, params=[("name", "m1"), ("name", "m2")])).json()
    assert {m["name"] for m in both["members"]} == {"m1", "m2"}

    bad = await client.http.get(path, params={"colour": "red"})
    assert bad.status_code == 400 and "colour" in bad.json()["detail"]


async def test_failover_moves_to_another_device_when_its_own_is_disabled(
    client: LbaasClient,
) -> None:
    first = await client.create_device("sim", url="sim://failover-a", cidr="10.201.0.0/24")
    second = await client.create_device("sim", url="sim://failover-b", cidr="10.201.0.0/24")
    lb = await _active_lb(client, first)
    same = await client.http.put(f"{API}/loadbalancers/{lb['id']}/failover")
    assert same.status_code == 202
    assert (await client.wait_lb(lb["id"], ("ACTIVE",)))["device_id"] == first["id"]

    await client.http.put(f"{API}/devices/{first['id']}", json={"device": {"enabled": False}})
    moved = await client.http.put(f"{API}/loadbalancers/{lb['id']}/failover")
    assert moved.status_code == 202
    after = await client.wait_lb(lb["id"], ("ACTIVE",))
    assert after["device_id"] == second["id"]
    assert after["vip_address"] == lb["vip_address"]
    assert [op["action"] for op in await client.operations(lb["id"])] == [
        "create",
        "failover",
        "failover",
    ]


INJECTIONS = [
    "a\nlisten pwned",
    "a\rb",
    "nul\x00",
    "sp ace",
    'quo"te',
    "quo'te",
    "ha#sh",
    "${VAR}",
    "{x}",
    "%",
    "%[src]",
    "back\\slash",
    "x" * 300,
    "é",
]


@pytest.mark.parametrize("value", INJECTIONS)
async def test_values_reaching_a_device_config_are_allow_listed(
    client: LbaasClient, value: str
) -> None:
    lb = await _active_lb(client)
    pool = (
        await client.http.post(
            f"{API}/pools",
            json={
                "pool": {
                    "loadbalancer_id": lb["id"],
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                }
            },
        )
    ).json()
    await client.wait_lb(lb["id"], ("ACTIVE",))
    pool_id = pool["pool"]["id"]
    attempts = {
        "url_path": client.http.post(
            f"{API}/healthmonitors",
            json={
                "healthmonitor": {
                    "pool_id": pool_id,
                    "type": "HTTP",
                    "delay": 5,
                    "timeout": 3,
                    "max_retries": 3,
                    "url_path": "/" + value,
                }
            },
        ),
        "expected_codes": client.http.post(
            f"{API}/healthmonitors",
            json={
                "healthmonitor": {
                    "pool_id": pool_id,
                    "type": "HTTP",
                    "delay": 5,
                    "timeout": 3,
                    "max_retries": 3,
                    "expected_codes": "200" + value,
                }
            },
        ),
        "cookie_name": client.http.put(
            f"{API}/pools/{pool_id}",
            json={
                "pool": {"session_persistence": {"type": "APP_COOKIE", "cookie_name": "c" + value}}
            },
        ),
        "insert_headers": client.http.post(
            f"{API}/listeners",
            json={
                "listener": {
                    "loadbalancer_id": lb["id"],
                    "protocol": "HTTP",
                    "protocol_port": 80,
                    "insert_headers": {"X-Forwarded-For" + value: "true"},
                }
            },
        ),
    }
    for field, attempt in attempts.items():
        response = await attempt
        assert response.status_code == 400, (field, response.text)
        assert field in response.json()["detail"], (field, response.json())
    assert (await client.get_lb(lb["id"])).json()["loadbalancer"]["generation"] == 2
