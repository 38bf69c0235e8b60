"""What OpenStack's clients expect of Octavia, asked of the running service: quotas in both
spellings, null resets, openstacksdk's filter names, additive member batches, Octavia's
timestamps, error bodies openstacksdk can read, and members naming their own project."""

import asyncio
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import openstack
import pytest
from octaviaclient.osc.v2.constants import QUOTA_COLUMNS  # type: ignore[import-untyped]
from openstack import exceptions as sdk_exceptions

from tests.support.client import ADMIN_TOKEN, LbaasClient
from tests.support.stack import Api

API = "/v2/lbaas"
WAIT = {"interval": 0.2, "wait": 60}
OCTAVIA_TIME = re.compile(r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\Z")
"""gophercloud's layout 2006-01-02T15:04:05, and nothing else."""


def _sdk(url: str, token: str = ADMIN_TOKEN) -> Any:
    """openstacksdk's load balancer proxy on the service (its hints are narrower than it is)."""
    conn = openstack.connect(
        auth_type="admin_token",
        auth={"token": token, "endpoint": url},
        load_balancer_endpoint_override=url,
    )
    return conn.load_balancer


async def _active_lb(client: LbaasClient, **fields: Any) -> dict[str, Any]:
    device = await client.create_device("noop")
    created = await client.create_lb(device, **fields)
    assert created.status_code == 202, created.text
    return await client.wait_lb(created.json()["loadbalancer"]["id"], ("ACTIVE",))


async def _change(
    client: LbaasClient, method: str, path: str, lb_id: str, body: Any = None, **params: Any
) -> dict[str, Any]:
    """A change that must be accepted, once its load balancer is ACTIVE again."""
    response = await client.http.request(method, f"{API}/{path}", json=body, params=params)
    assert response.status_code == 202, response.text
    await client.wait_lb(lb_id, ("ACTIVE",))
    answer: dict[str, Any] = response.json()
    return answer


async def _get(client: LbaasClient, path: str) -> dict[str, Any]:
    response = await client.http.get(f"{API}/{path}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _tree(client: LbaasClient) -> dict[str, Any]:
    """An ACTIVE load balancer with an HTTP listener, its default pool, a member and an HTTP
    health monitor; the ids of each."""
    lb = await _active_lb(client)
    lb_id = lb["id"]
    listener = await _change(
        client,
        "POST",
        "listeners",
        lb_id,
        {"listener": {"loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80}},
    )
    listener_id = listener["listener"]["id"]
    pool = await _change(
        client,
        "POST",
        "pools",
        lb_id,
        {"pool": {"listener_id": listener_id, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}},
    )
    pool_id = pool["pool"]["id"]
    member = await _change(
        client,
        "POST",
        f"pools/{pool_id}/members",
        lb_id,
        {"member": {"address": "127.0.0.21", "protocol_port": 8080, "monitor_port": 9090}},
    )
    monitor = await _change(
        client,
        "POST",
        "healthmonitors",
        lb_id,
        {
            "healthmonitor": {
                "pool_id": pool_id,
                "type": "HTTP",
                "delay": 5,
                "timeout": 3,
                "max_retries": 3,
                "url_path": "/health",
            }
        },
    )
    return {
        "lb": lb_id,
        "listener": listener_id,
        "pool": pool_id,
        "member": member["member"]["id"],
        "healthmonitor": monitor["healthmonitor"]["id"],
    }


async def test_quotas_answer_and_take_both_spellings(client: LbaasClient, api: Api) -> None:
    project = f"quota-{uuid.uuid4().hex[:8]}"
    path = f"{API}/quotas/{project}"
    cli_body = {"quota": {"load_balancer": 5, "health_monitor": 7, "l7policy": 3, "l7rule": 4}}
    set_old = await client.http.put(path, json=cli_body)
    assert set_old.status_code == 202, set_old.text
    shown = (await client.http.get(path)).json()["quota"]
    assert (shown["loadbalancer"], shown["load_balancer"]) == (5, 5)
    assert (shown["healthmonitor"], shown["health_monitor"]) == (7, 7)
    assert (shown["l7policy"], shown["l7rule"]) == (3, 4)
    assert set(QUOTA_COLUMNS) - {"project_id"} <= set(shown)

    set_new = await client.http.put(path, json={"quota": {"loadbalancer": 6}})
    assert set_new.json()["quota"]["load_balancer"] == 6
    both = await client.http.put(path, json={"quota": {"loadbalancer": 1, "load_balancer": 2}})
    assert both.status_code == 202, both.text
    assert both.json()["quota"]["load_balancer"] == 1
    unset = await client.http.put(path, json={"quota": {"load_balancer": None}})
    assert unset.json()["quota"]["loadbalancer"] == -1
    listed = (await client.http.get(f"{API}/quotas")).json()["quotas"]
    mine = next(quota for quota in listed if quota["project_id"] == project)
    assert set(QUOTA_COLUMNS) <= set(mine)

    def with_sdk() -> tuple[int, int]:
        lb_api = _sdk(api.url)
        lb_api.update_quota(project, load_balancers=9, health_monitors=8)
        quota = lb_api.get_quota(project)
        return quota.load_balancers, quota.health_monitors

    assert await asyncio.to_thread(with_sdk) == (9, 8)
    assert (await client.http.get(path)).json()["quota"]["loadbalancer"] == 9


async def test_null_in_an_update_resets_the_field(client: LbaasClient) -> None:
    ids = await _tree(client)
    lb_id = ids["lb"]
    listener_path = f"listeners/{ids['listener']}"
    changed = {
        "name": "web",
        "description": "front",
        "connection_limit": 100,
        "timeout_client_data": 1000,
        "allowed_cidrs": ["192.0.2.0/24"],
        "insert_headers": {"X-Forwarded-For": "true"},
        "tags": ["a"],
    }
    await _change(client, "PUT", listener_path, lb_id, {"listener": changed})
    await _change(client, "PUT", listener_path, lb_id, {"listener": dict.fromkeys(changed, None)})
    listener = (await _get(client, listener_path))["listener"]
    assert listener["name"] == listener["description"] == ""
    assert (listener["connection_limit"], listener["timeout_client_data"]) == (-1, 50_000)
    assert (listener["allowed_cidrs"], listener["insert_headers"], listener["tags"]) == (
        None,
        {},
        [],
    )

    await _change(client, "PUT", listener_path, lb_id, {"listener": {"default_pool_id": None}})
    assert (await _get(client, listener_path))["listener"]["default_pool_id"] is None

    member_path = f"pools/{ids['pool']}/members/{ids['member']}"
    await _change(
        client, "PUT", member_path, lb_id, {"member": {"weight": 5, "monitor_port": None}}
    )
    await _change(client, "PUT", member_path, lb_id, {"member": {"weight": None}})
    member = (await _get(client, member_path))["member"]
    assert (member["weight"], member["monitor_port"]) == (1, None)

    monitor_path = f"healthmonitors/{ids['healthmonitor']}"
    await _change(
        client,
        "PUT",
        monitor_path,
        lb_id,
        {"healthmonitor": {"url_path": None, "max_retries_down": None}},
    )
    monitor = (await _get(client, monitor_path))["healthmonitor"]
    assert (monitor["url_path"], monitor["max_retries_down"]) == ("/", 3)

    pool_path = f"{API}/pools/{ids['pool']}"
    required = await client.http.put(pool_path, json={"pool": {"lb_algorithm": None}})
    assert required.status_code == 400
    assert required.json()["errors"][0]["field"] == "pool.lb_algorithm"
    assert (await _get(client, f"pools/{ids['pool']}"))["pool"]["lb_algorithm"] == "ROUND_ROBIN"


def _unset_by_sdk(url: str) -> str:
    lb_api = _sdk(url)
    lb = lb_api.create_load_balancer(name="unset", description="to go", provider="noop")
    lb_api.wait_for_load_balancer(lb.id, **WAIT)
    lb_api.update_load_balancer(lb.id, description=None)
    description: str = lb_api.wait_for_load_balancer(lb.id, **WAIT).description
    return description


async def test_an_sdk_unset_resets_the_description(client: LbaasClient, api: Api) -> None:
    await client.create_device("noop")
    assert await asyncio.to_thread(_unset_by_sdk, api.url) == ""


def _filtered_by_sdk(url: str, ids: dict[str, Any], created_at: str) -> dict[str, list[str]]:
    lb_api = _sdk(url)
    policy = lb_api.create_l7_policy(listener_id=ids["listener"], action="REJECT")
    lb_api.wait_for_load_balancer(ids["lb"], **WAIT)
    rule = lb_api.create_l7_rule(policy, type="PATH", compare_type="STARTS_WITH", value="/sdk")
    lb_api.wait_for_load_balancer(ids["lb"], **WAIT)
    return {
        "listeners": [x.id for x in lb_api.listeners(load_balancer_id=ids["lb"])],
        "pools_of_lb": [x.id for x in lb_api.pools(loadbalancer_id=ids["lb"])],
        "pools_of_listener": [x.id for x in lb_api.pools(listener_id=ids["listener"])],
        "pools_of_monitor": [x.id for x in lb_api.pools(health_monitor_id=ids["healthmonitor"])],
        "rules": [x.id for x in lb_api.l7_rules(policy, rule_value="/sdk")],
        "no_rules": [x.id for x in lb_api.l7_rules(policy, rule_value="/other")],
        "rule": [rule.id],
        "members_at": [x.id for x in lb_api.members(ids["pool"], created_at=created_at)],
        "monitors_port": [x.id for x in lb_api.members(ids["pool"], monitor_port=9090)],
    }


async def test_openstacksdk_filter_names(client: LbaasClient, api: Api) -> None:
    ids = await _tree(client)
    await _tree(client)  # another tree, which no filter of the first may find
    member = (await _get(client, f"pools/{ids['pool']}/members/{ids['member']}"))["member"]
    found = await asyncio.to_thread(_filtered_by_sdk, api.url, ids, member["created_at"])
    assert found["listeners"] == [ids["listener"]]
    assert found["pools_of_lb"] == found["pools_of_listener"] == [ids["pool"]]
    assert found["pools_of_monitor"] == [ids["pool"]]
    assert found["rules"] == found["rule"]
    assert found["no_rules"] == []
    assert found["members_at"] == found["monitors_port"] == [ids["member"]]
    an_hour_ago = datetime.fromtimestamp(datetime.now(UTC).timestamp() - 3600, UTC)
    earlier = await client.http.get(
        f"{API}/pools/{ids['pool']}/members",
        params={"created_at": an_hour_ago.strftime("%Y-%m-%dT%H:%M:%S")},
    )
    assert earlier.json()["members"] == []
    bad = await client.http.get(f"{API}/listeners", params={"created_at": "yesterday"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "created_at"
    no_such_second = await client.http.get(
        f"{API}/listeners", params={"updated_at": "2026-02-30T00:00:00"}
    )
    assert no_such_second.json()["listeners"] == []


async def test_additive_only_keeps_the_members_left_out(client: LbaasClient) -> None:
    ids = await _tree(client)
    lb_id, path = ids["lb"], f"pools/{ids['pool']}/members"

    def member(port: int, **extra: Any) -> dict[str, Any]:
        return {"address": "127.0.0.21", "protocol_port": port, **extra}

    async def ports() -> dict[int, int]:
        listed = (await _get(client, path))["members"]
        return {m["protocol_port"]: m["weight"] for m in listed}

    await _change(client, "PUT", path, lb_id, {"members": [member(8080), member(8081)]})
    batch = {"members": [member(8081, weight=7), member(8082)]}
    await _change(client, "PUT", path, lb_id, batch, additive_only="true")
    assert await ports() == {8080: 1, 8081: 7, 8082: 1}
    await _change(client, "PUT", path, lb_id, batch, additive_only="false")
    assert await ports() == {8081: 7, 8082: 1}
    bad = await client.http.put(f"{API}/{path}", json=batch, params={"additive_only": "maybe"})
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["field"] == "additive_only"


async def test_timestamps_are_octavias(client: LbaasClient) -> None:
    ids = await _tree(client)
    shown = [
        (await _get(client, f"loadbalancers/{ids['lb']}"))["loadbalancer"],
        (await _get(client, f"listeners/{ids['listener']}"))["listener"],
        (await _get(client, f"pools/{ids['pool']}/members/{ids['member']}"))["member"],
        (await _get(client, f"healthmonitors/{ids['healthmonitor']}"))["healthmonitor"],
        *(await client.operations(ids["lb"])),
        *(await _get(client, "devices"))["devices"],
        *(await _get(client, "tokens"))["tokens"],
    ]
    for body in shown:
        for name in ("created_at", "updated_at"):
            if name in body:
                assert OCTAVIA_TIME.fullmatch(body[name]), (name, body[name])
                datetime.strptime(body[name], "%Y-%m-%dT%H:%M:%S")  # gophercloud's layout


async def test_paging_by_created_at_needs_no_fraction_of_a_second(client: LbaasClient) -> None:
    """Objects created within one second page in order, each once (the marker is an id)."""
    ids = await _tree(client)
    path = f"pools/{ids['pool']}/members"
    batch = {"members": [{"address": "127.0.0.22", "protocol_port": p} for p in range(1, 8)]}
    await _change(client, "PUT", path, ids["lb"], batch)
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2, "sort": "created_at:asc"}
    while True:
        page = (await client.http.get(f"{API}/{path}", params=params)).json()
        seen += [m["id"] for m in page["members"]]
        following = [link for link in page["members_links"] if link["rel"] == "next"]
        if not following:
            break
        params["marker"] = httpx.URL(following[0]["href"]).params["marker"]
    everything = [m["id"] for m in (await _get(client, f"{path}?sort=created_at:asc"))["members"]]
    assert seen == everything
    assert len(set(seen)) == 7


def _sdk_errors(url: str) -> tuple[str | None, str | None]:
    """The details of errors of lists, whose requests openstacksdk sends with ``Accept:
    application/json`` (its other requests accept ``*/*``)."""
    lb_api = _sdk(url)
    with pytest.raises(sdk_exceptions.BadRequestException) as invalid:
        list(lb_api.listeners(created_at="yesterday"))
    with pytest.raises(sdk_exceptions.NotFoundException) as not_found:
        list(lb_api.members(str(uuid.uuid4())))
    return invalid.value.details, not_found.value.details


async def test_openstacksdk_shows_the_problem_detail(client: LbaasClient, api: Api) -> None:
    invalid, not_found = await asyncio.to_thread(_sdk_errors, api.url)
    assert invalid is not None and "created_at" in invalid and "2026-01-31T12:00:00" in invalid
    assert not_found is not None and "Pool" in not_found and "not found" in not_found


@pytest.mark.parametrize(
    ("accept", "media_type"),
    [
        (None, "application/problem+json"),
        ("*/*", "application/problem+json"),
        ("application/json", "application/json"),
        ("application/json, application/problem+json", "application/problem+json"),
        ("application/problem+json;q=0.5, application/json", "application/json"),
        ("application/*", "application/problem+json"),
    ],
)
async def test_problems_are_json_to_clients_that_prefer_it(
    client: LbaasClient, accept: str | None, media_type: str
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = await client.http.get(f"{API}/loadbalancers/{uuid.uuid4()}", headers=headers)
    assert response.status_code == 404
    assert response.headers["content-type"] == media_type
    assert response.json()["status"] == 404


async def test_every_error_carries_the_request_id(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        answers = [
            await http.get(f"{API}/loadbalancers"),  # no token
            await http.get(f"{API}/loadbalancers", headers={"X-Auth-Token": "nope"}),
        ]
        admin = {"X-Auth-Token": ADMIN_TOKEN, "Accept": "application/json"}
        answers += [
            await http.get(f"{API}/loadbalancers/{uuid.uuid4()}", headers=admin),
            await http.get(f"{API}/loadbalancers", params={"limit": "x"}, headers=admin),
            await http.post(f"{API}/loadbalancers", content=b"{", headers=admin),
            await http.patch(f"{API}/loadbalancers", headers=admin),
            await http.post(f"{API}/pools", content=b" " * (2 << 20), headers=admin),
        ]
    for answer in answers:
        assert answer.status_code >= 400
        assert answer.headers["x-openstack-request-id"].startswith("req-"), answer.status_code


async def test_a_member_may_name_its_own_project(
    client: LbaasClient, client_factory: Callable[[str | None], LbaasClient]
) -> None:
    project = f"own-{uuid.uuid4().hex[:8]}"
    issued = await client.http.post(
        f"{API}/tokens", json={"token": {"name": project, "project_id": project, "role": "member"}}
    )
    member = client_factory(issued.json()["token"]["token"])
    await client.create_device("noop")
    body = {"provider": "noop", "project_id": "someone-else"}
    refused = await member.http.post(f"{API}/loadbalancers", json={"loadbalancer": body})
    assert refused.status_code == 403
    own = await member.http.post(
        f"{API}/loadbalancers", json={"loadbalancer": {**body, "project_id": project}}
    )
    assert own.status_code == 202, own.text
    lb_id = own.json()["loadbalancer"]["id"]
    assert own.json()["loadbalancer"]["project_id"] == project
    await member.wait_lb(lb_id, ("ACTIVE",))
    listener = {"loadbalancer_id": lb_id, "protocol": "TCP", "protocol_port": 22}
    foreign = await member.http.post(
        f"{API}/listeners", json={"listener": {**listener, "project_id": "someone-else"}}
    )
    assert foreign.status_code == 403
    child = await member.http.post(
        f"{API}/listeners", json={"listener": {**listener, "project_id": project}}
    )
    assert child.status_code == 202, child.text
    assert child.json()["listener"]["project_id"] == project
