"""openstacksdk drives the service the way an OpenStack user would."""

import asyncio
from typing import Any

import openstack

from tests.support.client import ADMIN_TOKEN, LbaasClient
from tests.support.stack import Api

WAIT = {"interval": 0.2, "wait": 60}


def _drive(url: str) -> dict[str, Any]:
    conn = openstack.connect(
        auth_type="admin_token",
        auth={"token": ADMIN_TOKEN, "endpoint": url},
        load_balancer_endpoint_override=url,
    )
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
    }


async def test_openstacksdk_full_flow(client: LbaasClient, api: Api) -> None:
    await client.create_device("noop")
    outcome = await asyncio.to_thread(_drive, api.url)

    lb_id = outcome["lb_id"]
    assert outcome["listed"] == [lb_id]
    assert lb_id in outcome["paged"]
    assert outcome["found"] == lb_id
    assert outcome["renamed"] == "sdk-renamed"
    assert outcome["stats"] == 0
    assert outcome["members"] == ["127.0.0.10"]
    assert outcome["monitor_path"] == "/health"
    assert (await client.get_lb(lb_id)).status_code == 404
    actions = [op["action"] for op in await client.operations(lb_id)]
    assert actions == ["create", "create", "create", "create", "create", "update", "delete"]
