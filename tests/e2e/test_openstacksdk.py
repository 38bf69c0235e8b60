"""openstacksdk drives the service the way an OpenStack user would: as an admin with
``admin_token``, and as a project's member with a Keystone application credential."""

import asyncio
import uuid
from typing import Any

import openstack
import pytest

from tests.support.client import ADMIN_TOKEN, LbaasClient
from tests.support.stack import Api

WAIT = {"interval": 0.2, "wait": 60}


def _drive(connection: dict[str, Any]) -> dict[str, Any]:
    conn = openstack.connect(**connection)
    lb_api: Any = conn.load_balancer  # the SDK's own hints are narrower than its behaviour
    lb = lb_api.create_load_balancer(name="sdk-web", provider="noop", tags=["sdk"])
    assert lb.provisioning_status == "PENDING_CREATE"
    lb = lb_api.wait_for_load_balancer(lb.id, **WAIT)

    listener = lb_api.create_listener(
        loadbalancer_id=lb.id, protocol="HTTP", protocol_port=80, name="sdk-listener"
    )
    lb_api.wait_for_load_balancer(lb.id, **WAIT)
    pool = lb_api.create_pool(
        listener_id=listener.id, protocol="HTTP", lb_algorithm="ROUND_ROBIN", name="sdk-pool"
    )
    lb_api.wait_for_load_balancer(lb.id, **WAIT)
    member = lb_api.create_member(pool, address="127.0.0.10", protocol_port=8080, weight=3)
    lb_api.wait_for_load_balancer(lb.id, **WAIT)
    monitor = lb_api.create_health_monitor(
        pool_id=pool.id, type="HTTP", delay=5, timeout=3, max_retries=3, url_path="/health"
    )
    lb_api.wait_for_load_balancer(lb.id, **WAIT)
    for resource in (
        lb_api.get_listener(listener.id),
        lb_api.get_pool(pool.id),
        lb_api.get_member(member.id, pool),
        lb_api.get_health_monitor(monitor.id),
    ):
        lb_api.wait_for_status(
            resource, status="ACTIVE", failures=["ERROR"], attribute="provisioning_status", **WAIT
        )

    by_sdk_filters = {
        "listeners": [x.id for x in lb_api.listeners(load_balancer_id=lb.id)] == [listener.id],
        "pools": [x.id for x in lb_api.pools(listener_id=listener.id)] == [pool.id],
        "monitored": [x.id for x in lb_api.pools(health_monitor_id=monitor.id)] == [pool.id],
    }
    try:
        lb_api.create_listener(loadbalancer_id=lb.id, protocol="HTTP", protocol_port=80)
        refusal = None
    except openstack.exceptions.ConflictException as exc:
        refusal = exc.details
    listed = [x.id for x in lb_api.load_balancers(tags="sdk")]
    paged = [x.id for x in lb_api.load_balancers(limit=2)]
    found = lb_api.find_load_balancer("sdk-web")
    lb_api.update_load_balancer(lb, name="sdk-renamed")
    renamed = lb_api.wait_for_load_balancer(lb.id, **WAIT)
    stats = lb_api.get_load_balancer_statistics(lb.id)
    members = [m.address for m in lb_api.members(pool)]

    lb_api.delete_load_balancer(lb, cascade=True)
    lb_api.wait_for_delete(renamed, **WAIT)
    return {
        "lb_id": lb.id,
        "listed": listed,
        "paged": paged,
        "found": found.id if found else None,
        "renamed": renamed.name,
        "stats": stats.total_connections,
        "members": members,
        "monitor_path": monitor.url_path,
        "by_sdk_filters": by_sdk_filters,
        "refusal": refusal,
    }


async def _connection(api: Api, client: LbaasClient, auth: str) -> dict[str, Any]:
    """How to connect: with the admin token, or as a new project's member by its token as an
    application credential (through the service's own Keystone API)."""
    if auth == "admin_token":
        return {
            "auth_type": "admin_token",
            "auth": {"token": ADMIN_TOKEN, "endpoint": api.url},
            "load_balancer_endpoint_override": api.url,
        }
    project = f"sdk-{uuid.uuid4().hex[:8]}"
    token = {"name": project, "project_id": project, "role": "member"}
    response = await client.http.post("/v2/lbaas/tokens", json={"token": token})
    assert response.status_code == 201, response.text
    issued = response.json()["token"]
    return {
        "auth_type": "v3applicationcredential",
        "auth": {
            "auth_url": f"{api.url}/identity/v3",
            "application_credential_id": issued["id"],
            "application_credential_secret": issued["token"],
        },
        "region_name": "RegionOne",
    }


@pytest.mark.parametrize("auth", ["admin_token", "v3applicationcredential"])
async def test_openstacksdk_full_flow(client: LbaasClient, api: Api, auth: str) -> None:
    await client.create_device("noop")
    connection = await _connection(api, client, auth)
    outcome = await asyncio.to_thread(_drive, connection)

    lb_id = outcome["lb_id"]
    assert outcome["listed"] == [lb_id]
    assert lb_id in outcome["paged"]
    assert outcome["found"] == lb_id
    assert outcome["renamed"] == "sdk-renamed"
    assert outcome["stats"] == 0
    assert outcome["members"] == ["127.0.0.10"]
    assert outcome["monitor_path"] == "/health"
    assert outcome["by_sdk_filters"] == {"listeners": True, "pools": True, "monitored": True}
    assert outcome["refusal"] is not None and "80" in outcome["refusal"], outcome["refusal"]
    assert (await client.get_lb(lb_id)).status_code == 404
    actions = [op["action"] for op in await client.operations(lb_id)]
    assert actions == ["create", "create", "create", "create", "create", "update", "delete"]
