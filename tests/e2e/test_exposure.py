"""What a project can neither see nor reach: device credentials and infrastructure errors,
other projects' VIPs, the choice of device, and member addresses that point inside the
service (loopback, link-local, multicast, VIP ranges...)."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent_service.executor import DEVICE_FAILED
from tests.e2e.test_access import issue
from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Api, Isolation, running

API = "/v2/lbaas"
CREDENTIALS = "hunter2-hunter2"


def _lb_body(members: list[dict[str, Any]]) -> dict[str, Any]:
    pool = {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": members}
    listener = {"protocol": "HTTP", "protocol_port": 80, "default_pool": pool}
    return {"loadbalancer": {"name": "x", "provider": "noop", "listeners": [listener]}}


async def test_credentials_cannot_be_part_of_a_management_url(client: LbaasClient) -> None:
    response = await client.http.post(
        f"{API}/devices",
        json={
            "device": {
                "name": "with-credentials",
                "driver": "sim",
                "management_url": f"sim://ops:{CREDENTIALS}@d3",
                "vip_cidr": "10.200.0.0/24",
            }
        },
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "management_secret" in response.json()["detail"]
    assert CREDENTIALS not in response.text


async def test_a_device_failure_tells_the_project_nothing_of_the_device(
    client: LbaasClient, client_factory: Any
) -> None:
    # The sim driver refuses this URL when it runs: a failure of the infrastructure.
    device = await client.create_device(
        "sim", url="sim://broken-appliance?bogus=1", management_secret=CREDENTIALS * 2
    )
    member = client_factory(await issue(client, "exposure-member", "proj-exposure", "member"))
    created = await client.create_lb(device, project_id="proj-exposure")
    assert created.status_code == 202, created.text
    lb_id = created.json()["loadbalancer"]["id"]
    failed = await member.wait_lb(lb_id)
    [operation] = await member.operations(lb_id)
    assert failed["provisioning_status"] == "ERROR"
    assert DEVICE_FAILED in failed["status_reason"]
    assert operation["error"] == DEVICE_FAILED
    shown = str(failed) + str(operation)
    for hidden in ("broken-appliance", "bogus", "sim://", CREDENTIALS):
        assert hidden not in shown


@pytest.fixture(scope="module")
async def strict(
    isolation: Isolation, log_dir: Path, client_factory: Any
) -> AsyncIterator[tuple[LbaasClient, dict[str, Any]]]:
    """A member of a project, on an API that refuses loopback members (production's default)
    and one reserved network; and a load balancer of another project, with its VIP."""
    api = Api(
        isolation.api_env(
            allow_loopback_members="false", reserved_member_networks="198.51.100.0/24"
        ),
        log_dir,
    )
    client: LbaasClient = client_factory(None)
    async with running(api):
        api.start()
        await api.wait_ready("/readyz")
        token = await issue(client, "strict-member", "proj-strict", "member")
        device = await client.create_device("noop")
        other = await client.create_lb(device, project_id="proj-other")
        assert other.status_code == 202, other.text
        async with authenticated(api.url, token, timeout=10) as http:
            yield LbaasClient(http), other.json()["loadbalancer"]


REFUSED = [
    "0.0.0.0",
    "::",
    "127.0.0.1",
    "::1",
    "169.254.169.254",
    "fe80::1",
    "224.0.0.1",
    "255.255.255.255",
    "ff02::1",
    "::ffff:127.0.0.1",
    "198.51.100.7",
]


@pytest.mark.parametrize("address", [*REFUSED, "another project's VIP"])
async def test_member_addresses_inside_the_service_are_refused(
    strict: tuple[LbaasClient, dict[str, Any]], address: str
) -> None:
    member, other = strict
    address = other["vip_address"] if address == "another project's VIP" else address
    body = _lb_body([{"address": address, "protocol_port": 80}])
    response = await member.http.post(f"{API}/loadbalancers", json=body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "address" in response.json()["detail"]
    monitor = _lb_body([{"address": "192.0.2.10", "protocol_port": 80, "monitor_address": address}])
    response = await member.http.post(f"{API}/loadbalancers", json=monitor)
    assert response.status_code == 400, response.text
    assert "monitor_address" in response.json()["detail"]


async def test_every_way_to_a_member_checks_its_address(
    strict: tuple[LbaasClient, dict[str, Any]],
) -> None:
    member, _ = strict
    created = await member.http.post(
        f"{API}/loadbalancers", json=_lb_body([{"address": "192.0.2.10", "protocol_port": 80}])
    )
    assert created.status_code == 202, created.text
    lb = await member.wait_lb(created.json()["loadbalancer"]["id"], ("ACTIVE",))
    pools = (await member.http.get(f"{API}/pools", params={"loadbalancer_id": lb["id"]})).json()
    pool = pools["pools"][0]
    members = f"{API}/pools/{pool['id']}/members"
    existing = f"{members}/{pool['members'][0]['id']}"
    refusals = [
        await member.http.post(members, json={"member": {"address": "::1", "protocol_port": 81}}),
        await member.http.put(members, json={"members": [{"address": "::1", "protocol_port": 81}]}),
        await member.http.put(existing, json={"member": {"monitor_address": "169.254.169.254"}}),
    ]
    for response in refusals:
        assert response.status_code == 400, response.text
    shown = (await member.get_lb(lb["id"])).json()["loadbalancer"]
    assert (shown["provisioning_status"], shown["generation"]) == ("ACTIVE", 1)


async def test_a_project_cannot_choose_the_device_nor_probe_vips(
    strict: tuple[LbaasClient, dict[str, Any]], client: LbaasClient
) -> None:
    member, other = strict
    for choice in ({"vip_address": other["vip_address"]}, {"device_id": other["device_id"]}):
        body = {"loadbalancer": {"name": "x", "provider": "noop", **choice}}
        response = await member.http.post(f"{API}/loadbalancers", json=body)
        assert response.status_code == 403, response.text
        assert other["vip_address"] not in response.text
    params = {"device_id": other["device_id"]}
    refused = await member.http.get(f"{API}/loadbalancers", params=params)
    assert refused.status_code == 400
    assert "device_id" in refused.json()["detail"]
    listed = (await client.http.get(f"{API}/loadbalancers", params=params)).json()
    assert other["id"] in [lb["id"] for lb in listed["loadbalancers"]]
    assert {lb["device_id"] for lb in listed["loadbalancers"]} == {other["device_id"]}
