"""VIP networks, subnets and ports as Neutron serves them, and load balancers placed by them."""

import asyncio
import uuid
from collections.abc import Callable
from ipaddress import ip_address, ip_network
from typing import Any

import openstack

from tests.e2e.test_access import issue
from tests.support.client import ADMIN_TOKEN, LbaasClient, random_cidr
from tests.support.stack import Api, eventually

LBS = "/v2/lbaas/loadbalancers"
Clients = Callable[[str | None], LbaasClient]


def _assert_problem(response: Any, status: int, mentions: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert mentions in response.json()["detail"], response.json()


async def _network(admin: LbaasClient, name: str) -> dict[str, Any]:
    response = await admin.http.post("/v2.0/networks", json={"network": {"name": name}})
    assert response.status_code == 201, response.text
    network: dict[str, Any] = response.json()["network"]
    return network


async def _subnet(admin: LbaasClient, network: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"network_id": network["id"], "cidr": random_cidr(), **fields}
    response = await admin.http.post("/v2.0/subnets", json={"subnet": body})
    assert response.status_code == 201, response.text
    subnet: dict[str, Any] = response.json()["subnet"]
    return subnet


async def _served_subnet(admin: LbaasClient, name: str, **fields: Any) -> dict[str, Any]:
    """A subnet on a network of its own, served by a new noop device."""
    subnet = await _subnet(admin, await _network(admin, f"{name}-net"), name=name, **fields)
    await admin.create_device("noop", cidr=subnet["cidr"])
    return subnet


async def _project(clients: Clients, admin: LbaasClient) -> tuple[str, LbaasClient]:
    project = f"p-{uuid.uuid4().hex[:8]}"
    return project, clients(await issue(admin, project, project, "member"))


async def _create(client: LbaasClient, **fields: Any) -> Any:
    return await client.http.post(LBS, json={"loadbalancer": {"provider": "noop", **fields}})


async def _port_gone(client: LbaasClient, port_id: str) -> None:
    async def gone() -> bool | None:
        return (
            True if (await client.http.get(f"/v2.0/ports/{port_id}")).status_code == 404 else None
        )

    await eventually(gone, timeout=30, what=f"port {port_id} deleted")


async def test_neutron_lists_filters_shows_and_404s(
    client: LbaasClient, client_factory: Clients
) -> None:
    name = f"web-vips-{uuid.uuid4().hex[:6]}"
    network = await _network(client, f"{name}-net")
    cidr = random_cidr()
    subnet = await _subnet(client, network, name=name, cidr=cidr, gateway_ip=cidr[:-4] + "1")
    assert subnet["allocation_pools"] == [{"start": cidr[:-4] + "2", "end": cidr[:-4] + "254"}]
    assert (subnet["ip_version"], subnet["network_id"], subnet["tenant_id"]) == (
        4,
        network["id"],
        "admin",
    )
    _, reader = await _project(client_factory, client)

    for params in (
        {"name": name},
        {"id": subnet["id"]},
        {"network_id": network["id"]},
        {"cidr": cidr, "ip_version": "4", "gateway_ip": cidr[:-4] + "1"},
    ):
        listed = await reader.http.get("/v2.0/subnets", params=params)
        assert listed.status_code == 200, listed.text
        assert [s["id"] for s in listed.json()["subnets"]] == [subnet["id"]], params
    assert (await reader.http.get("/v2.0/subnets", params={"name": "no-such"})).json() == {
        "subnets": [],
        "subnets_links": [],
    }
    shown = await reader.http.get(f"/v2/subnets/{subnet['id']}")
    assert shown.json()["subnet"]["cidr"] == cidr
    nets = await reader.http.get("/v2.0/networks", params={"name": f"{name}-net"})
    assert [n["subnets"] for n in nets.json()["networks"]] == [[subnet["id"]]]
    assert (await reader.http.get(f"/v2.0/networks/{network['id']}")).json()["network"][
        "shared"
    ] is True

    _assert_problem(await reader.http.get(f"/v2.0/subnets/{uuid.uuid4()}"), 404, "Subnet")
    _assert_problem(await reader.http.get(f"/v2.0/ports/{uuid.uuid4()}"), 404, "Port")
    _assert_problem(await reader.http.get("/v2.0/subnets", params={"colour": "red"}), 400, "colour")
    _assert_problem(
        await reader.http.post("/v2.0/networks", json={"network": {"name": "mine"}}), 403, "admin"
    )
    assert (await reader.http.get("/v2.0/networks", params={"name": "mine"})).json()[
        "networks"
    ] == []
    unauthenticated = await reader.http.get("/v2.0/subnets", headers={"X-Auth-Token": "nope"})
    assert unauthenticated.status_code == 401
    only = await reader.http.get("/v2.0/subnets", params={"id": subnet["id"], "fields": "cidr"})
    assert only.json()["subnets"] == [{"cidr": cidr}]
    assert (await reader.http.get("/v2.0/extensions")).json() == {"extensions": []}
    _assert_problem(await reader.http.get("/v2.0/extensions/tag"), 404, "")


async def test_default_pools_leave_out_the_gateway_and_ipv6_works(client: LbaasClient) -> None:
    network = await _network(client, "defaults")
    cidr = random_cidr()
    base = cidr[:-4]
    split = await _subnet(client, network, cidr=cidr, gateway_ip=base + "100")
    assert split["allocation_pools"] == [
        {"start": base + "1", "end": base + "99"},
        {"start": base + "101", "end": base + "254"},
    ]
    range6 = ip_network(f"fd00:{uuid.uuid4().int % 0xFFFF + 1:x}::/120")
    last_two = [str(range6[254]), str(range6[255])]
    six = await _subnet(
        client,
        network,
        cidr=str(range6),
        ip_version=6,
        allocation_pools=[{"start": last_two[0], "end": last_two[1]}],
    )
    await client.create_device("noop", cidr=six["cidr"])
    vips = [
        (await _create(client, vip_subnet_id=six["id"])).json()["loadbalancer"]["vip_address"]
        for _ in range(2)
    ]
    assert vips == last_two


async def test_pools_wider_than_a_bigint_and_at_the_bottom_of_the_space_allocate(
    client: LbaasClient,
) -> None:
    """Address arithmetic in the allocation never overflows: an IPv6 pool of 2**64 addresses
    (a port, then a load balancer, the two ways of claiming), and a pool ending below the
    claim's span at the bottom of the address space."""
    network = await _network(client, "wide")
    wide = ip_network(f"fd00:{uuid.uuid4().int % 0xFFFF + 1:x}:{uuid.uuid4().int % 0xFFFF:x}::/64")
    six = await _subnet(client, network, cidr=str(wide), ip_version=6)
    await client.create_device("noop", cidr=six["cidr"])
    port = await client.http.post(
        "/v2.0/ports", json={"port": {"network_id": network["id"], "name": "wide"}}
    )
    assert port.status_code == 201, port.text
    assert port.json()["port"]["fixed_ips"][0]["ip_address"] == str(wide[1])
    lb = await _create(client, vip_subnet_id=six["id"])
    assert lb.status_code == 202, lb.text
    assert lb.json()["loadbalancer"]["vip_address"] == str(wide[2])
    bottom = await _subnet(
        client,
        await _network(client, "bottom"),
        cidr="::/125",
        ip_version=6,
        allocation_pools=[{"start": "::1", "end": "::2"}],
    )
    await client.create_device("noop", cidr=bottom["cidr"])
    vips = [
        (await _create(client, vip_subnet_id=bottom["id"])).json()["loadbalancer"]["vip_address"]
        for _ in range(2)
    ]
    assert vips == ["::1", "::2"]


async def test_bad_subnets_are_refused_and_change_nothing(client: LbaasClient) -> None:
    network = await _network(client, "bad-subnets")
    cidr = random_cidr()
    base = cidr[:-4]
    for fields, mentions in (
        ({"allocation_pools": [{"start": base + "10", "end": base + "300"}]}, "end"),
        ({"allocation_pools": [{"start": base + "20", "end": base + "10"}]}, "allocation_pools"),
        (
            {
                "allocation_pools": [
                    {"start": base + "10", "end": base + "20"},
                    {"start": base + "15", "end": base + "30"},
                ]
            },
            "overlaps",
        ),
        (
            {
                "gateway_ip": base + "12",
                "allocation_pools": [{"start": base + "10", "end": base + "20"}],
            },
            "gateway",
        ),
        ({"ip_version": 6}, "ip_version"),
        ({"cidr": base + "1/24"}, "cidr"),
        ({"enable_dhcp": 0}, "enable_dhcp"),
    ):
        body = {"network_id": network["id"], "cidr": cidr, **fields}
        _assert_problem(
            await client.http.post("/v2.0/subnets", json={"subnet": body}), 400, mentions
        )
    for flag in ("shared", "admin_state_up"):  # 1 is not true
        network_body = {"network": {"name": "n", flag: 1}}
        _assert_problem(await client.http.post("/v2.0/networks", json=network_body), 400, flag)
    missing = {"network_id": str(uuid.uuid4()), "cidr": cidr}
    _assert_problem(
        await client.http.post("/v2.0/subnets", json={"subnet": missing}), 404, "Network"
    )
    listed = await client.http.get("/v2.0/subnets", params={"network_id": network["id"]})
    assert listed.json()["subnets"] == []


async def test_a_load_balancer_on_a_subnet_gets_a_port_from_its_pools(
    client: LbaasClient, client_factory: Clients
) -> None:
    cidr = random_cidr()
    base = cidr[:-4]
    pools = [{"start": base + "100", "end": base + "101"}]
    subnet = await _served_subnet(client, "pooled", cidr=cidr, allocation_pools=pools)
    project, member = await _project(client_factory, client)

    first = await _create(member, vip_subnet_id=subnet["id"])
    assert first.status_code == 202, first.text
    lb = first.json()["loadbalancer"]
    assert (lb["vip_address"], lb["vip_subnet_id"], lb["vip_network_id"]) == (
        base + "100",
        subnet["id"],
        subnet["network_id"],
    )
    port = (await member.http.get(f"/v2.0/ports/{lb['vip_port_id']}")).json()["port"]
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": base + "100"}]
    assert (port["device_owner"], port["device_id"], port["project_id"]) == (
        "Octavia",
        lb["id"],
        project,
    )
    assert (await member.wait_lb(lb["id"]))["provisioning_status"] == "ACTIVE"

    second = (await _create(member, vip_subnet_id=subnet["id"])).json()["loadbalancer"]
    assert second["vip_address"] == base + "101"
    _assert_problem(await _create(member, vip_subnet_id=subnet["id"]), 503, subnet["id"])

    by_lb = await member.http.get("/v2.0/ports", params={"device_id": lb["id"]})
    assert [p["id"] for p in by_lb.json()["ports"]] == [lb["vip_port_id"]]
    await member.wait_lb(second["id"])
    assert (await member.http.delete(f"{LBS}/{lb['id']}")).status_code == 202
    await _port_gone(member, lb["vip_port_id"])
    again = (await _create(member, vip_subnet_id=subnet["id"])).json()["loadbalancer"]
    assert again["vip_address"] == base + "100"


async def test_a_load_balancer_on_a_network_and_unknown_ones(
    client: LbaasClient, client_factory: Clients
) -> None:
    subnet = await _served_subnet(client, "by-network")
    _, member = await _project(client_factory, client)
    created = await _create(member, vip_network_id=subnet["network_id"])
    assert created.status_code == 202, created.text
    lb = created.json()["loadbalancer"]
    assert lb["vip_subnet_id"] == subnet["id"]
    assert ip_address(lb["vip_address"]) in ip_network(subnet["cidr"])

    unserved = await _subnet(client, await _network(client, "unserved"))
    for fields, status, mentions in (
        ({"vip_subnet_id": str(uuid.uuid4())}, 404, "Subnet"),
        ({"vip_subnet_id": "web-vips"}, 404, "web-vips"),
        ({"vip_network_id": str(uuid.uuid4())}, 404, "Network"),
        ({"vip_port_id": str(uuid.uuid4())}, 404, "Port"),
        ({"vip_subnet_id": unserved["id"]}, 400, "serves"),
        (
            {"vip_subnet_id": subnet["id"], "vip_network_id": unserved["network_id"]},
            400,
            "vip_network_id",
        ),
    ):
        _assert_problem(await _create(member, **fields), status, mentions)


async def test_a_reserved_port_is_taken_once_and_by_its_project_only(
    client: LbaasClient, client_factory: Clients
) -> None:
    subnet = await _served_subnet(client, "ports")
    project, owner = await _project(client_factory, client)
    _, other = await _project(client_factory, client)
    address = subnet["cidr"][:-4] + "77"
    reserved = await client.http.post(
        "/v2.0/ports",
        json={
            "port": {
                "network_id": subnet["network_id"],
                "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": address}],
                "project_id": project,
                "name": "reserved",
            }
        },
    )
    assert reserved.status_code == 201, reserved.text
    port = reserved.json()["port"]
    assert (port["status"], port["device_id"]) == ("DOWN", None)

    assert [p["id"] for p in (await owner.http.get("/v2.0/ports")).json()["ports"]] == [port["id"]]
    assert (await other.http.get("/v2.0/ports")).json()["ports"] == []
    mine = await owner.http.get("/v2.0/ports", params={"tenant_id": project, "name": "reserved"})
    assert [p["id"] for p in mine.json()["ports"]] == [port["id"]]
    assert (await other.http.get("/v2.0/ports", params={"project_id": project})).json()[
        "ports"
    ] == []
    _assert_problem(await other.http.get(f"/v2.0/ports/{port['id']}"), 404, "Port")
    _assert_problem(await _create(other, vip_port_id=port["id"]), 404, "Port")

    created = await _create(owner, vip_port_id=port["id"])
    assert created.status_code == 202, created.text
    lb = created.json()["loadbalancer"]
    assert (lb["vip_port_id"], lb["vip_address"], lb["vip_subnet_id"]) == (
        port["id"],
        address,
        subnet["id"],
    )
    _assert_problem(await _create(owner, vip_port_id=port["id"]), 409, "already")
    on_port = await owner.http.get(LBS, params={"vip_port_id": port["id"]})
    assert [x["id"] for x in on_port.json()["loadbalancers"]] == [lb["id"]]
    _assert_problem(await client.http.delete(f"/v2.0/ports/{port['id']}"), 409, lb["id"])
    taken = await client.http.post(
        "/v2.0/ports",
        json={
            "port": {
                "network_id": subnet["network_id"],
                "fixed_ips": [{"subnet_id": subnet["id"], "ip_address": address}],
            }
        },
    )
    _assert_problem(taken, 409, address)
    shown = (await owner.http.get(f"/v2.0/ports/{port['id']}")).json()["port"]
    assert (shown["status"], shown["device_id"], shown["device_owner"]) == (
        "ACTIVE",
        lb["id"],
        "Octavia",
    )
    await owner.wait_lb(lb["id"])
    assert (await owner.http.delete(f"{LBS}/{lb['id']}")).status_code == 202
    await _port_gone(owner, port["id"])


async def test_admins_say_which_devices_serve_a_subnet(client: LbaasClient) -> None:
    extra = await _subnet(client, await _network(client, "extra"))
    devices = "/v2/lbaas/devices"
    unknown = {"name": "no-such-subnet", "driver": "noop", "management_url": "noop://x"}
    refused = await client.http.post(
        devices,
        json={
            "device": {**unknown, "vip_cidr": random_cidr(), "vip_subnet_ids": [str(uuid.uuid4())]}
        },
    )
    _assert_problem(refused, 404, "Subnet")
    listed = (await client.http.get(devices)).json()["devices"]
    assert "no-such-subnet" not in [d["name"] for d in listed]

    device = await client.create_device("noop", vip_subnet_ids=[extra["id"]])
    [own] = (await client.http.get("/v2.0/subnets", params={"cidr": device["vip_cidr"]})).json()[
        "subnets"
    ]
    assert device["vip_subnet_ids"] == [extra["id"], own["id"]]  # oldest first
    lb = (await _create(client, vip_subnet_id=extra["id"])).json()["loadbalancer"]
    assert lb["device_id"] == device["id"]
    in_vip_range = {"address": extra["cidr"][:-4] + "9", "protocol_port": 80}
    pool = {"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN", "members": [in_vip_range]}
    _assert_problem(await _create(client, vip_subnet_id=extra["id"], pools=[pool]), 400, "VIPs")

    path = f"{devices}/{device['id']}"
    dropping = await client.http.put(path, json={"device": {"vip_subnet_ids": []}})
    _assert_problem(dropping, 409, extra["id"])
    assert (await client.http.get(path)).json()["device"]["vip_subnet_ids"] == [
        extra["id"],
        own["id"],
    ]
    _assert_problem(await client.http.delete(f"/v2.0/subnets/{extra['id']}"), 409, "ports")
    await client.wait_lb(lb["id"])
    assert (await client.http.delete(f"{LBS}/{lb['id']}")).status_code == 202
    await client.wait_gone(lb["id"])
    _assert_problem(await client.http.delete(f"/v2.0/subnets/{extra['id']}"), 409, "served")
    dropped = await client.http.put(path, json={"device": {"vip_subnet_ids": []}})
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["device"]["vip_subnet_ids"] == [own["id"]]
    assert (await client.http.delete(f"/v2.0/subnets/{extra['id']}")).status_code == 204
    _assert_problem(await client.http.get(f"/v2.0/subnets/{extra['id']}"), 404, "Subnet")


async def test_member_subnets_must_exist_and_hold_the_address(
    client: LbaasClient, client_factory: Clients
) -> None:
    vip_subnet = await _served_subnet(client, "member-vips")
    members_subnet = await _subnet(client, await _network(client, "member-net"))
    _, member = await _project(client_factory, client)
    lb = (await _create(member, vip_subnet_id=vip_subnet["id"])).json()["loadbalancer"]
    await member.wait_lb(lb["id"])
    pool = await member.http.post(
        "/v2/lbaas/pools",
        json={
            "pool": {"loadbalancer_id": lb["id"], "protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}
        },
    )
    assert pool.status_code == 202, pool.text
    await member.wait_lb(lb["id"])
    members = f"/v2/lbaas/pools/{pool.json()['pool']['id']}/members"
    inside = members_subnet["cidr"][:-4] + "9"
    for fields, status, mentions in (
        ({"subnet_id": str(uuid.uuid4()), "address": inside}, 404, "Subnet"),
        ({"subnet_id": members_subnet["id"], "address": "192.0.2.9"}, 400, "outside"),
    ):
        body = {"protocol_port": 80, **fields}
        _assert_problem(await member.http.post(members, json={"member": body}), status, mentions)
    assert (await member.http.get(members)).json()["members"] == []
    body = {"protocol_port": 80, "subnet_id": members_subnet["id"], "address": inside}
    accepted = await member.http.post(members, json={"member": body})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["member"]["subnet_id"] == members_subnet["id"]


def _find_with_openstacksdk(url: str, name: str) -> tuple[str | None, list[str]]:
    conn = openstack.connect(
        auth_type="admin_token",
        auth={"token": ADMIN_TOKEN, "endpoint": url},
        network_endpoint_override=f"{url}/v2.0",
    )
    found = conn.network.find_subnet(name)
    by_id = conn.network.find_subnet(found.id) if found else None
    networks = [n.id for n in conn.network.networks(name=f"{name}-net")]
    return (by_id.id if by_id else None), networks


async def test_openstacksdk_finds_subnets_by_name_and_id(client: LbaasClient, api: Api) -> None:
    name = f"sdk-{uuid.uuid4().hex[:6]}"
    subnet = await _served_subnet(client, name)
    found, networks = await asyncio.to_thread(_find_with_openstacksdk, api.url, name)
    assert found == subnet["id"]
    assert networks == [subnet["network_id"]]


def _through_the_catalog(url: str, credential: dict[str, Any], name: str) -> dict[str, Any]:
    """As a project with only Keystone's address: the network endpoint comes from the catalog."""
    conn = openstack.connect(
        auth_type="v3applicationcredential",
        auth={
            "auth_url": f"{url}/identity/v3",
            "application_credential_id": credential["id"],
            "application_credential_secret": credential["token"],
        },
        region_name="RegionOne",
    )
    subnet = conn.network.find_subnet(name, ignore_missing=False)
    lb_api: Any = conn.load_balancer
    lb = lb_api.create_load_balancer(name="by-subnet", provider="noop", vip_subnet_id=subnet.id)
    port = conn.network.get_port(lb.vip_port_id)
    return {"subnet": subnet.id, "lb_subnet": lb.vip_subnet_id, "port_ips": port.fixed_ips}


async def test_openstacksdk_through_the_catalog(client: LbaasClient, api: Api) -> None:
    name = f"catalog-{uuid.uuid4().hex[:6]}"
    subnet = await _served_subnet(client, name)
    project = f"p-{uuid.uuid4().hex[:8]}"
    response = await client.http.post(
        "/v2/lbaas/tokens",
        json={"token": {"name": project, "project_id": project, "role": "member"}},
    )
    assert response.status_code == 201, response.text
    outcome = await asyncio.to_thread(_through_the_catalog, api.url, response.json()["token"], name)
    assert outcome["subnet"] == outcome["lb_subnet"] == subnet["id"]
    [fixed_ip] = outcome["port_ips"]
    assert fixed_ip["subnet_id"] == subnet["id"]


async def test_neutron_lists_page(client: LbaasClient) -> None:
    subnet = await _served_subnet(client, "paged")
    for _ in range(3):
        assert (await _create(client, vip_subnet_id=subnet["id"])).status_code == 202
    for collection in ("subnets", "networks", "ports"):
        page = await client.http.get(f"/v2.0/{collection}", params={"limit": 2})
        assert page.status_code == 200, page.text
        assert len(page.json()[collection]) == 2
        [link] = page.json()[f"{collection}_links"]
        assert link["rel"] == "next"
        following = await client.http.get(link["href"])
        assert following.status_code == 200, following.text
        assert following.json()[collection][0] not in page.json()[collection]


async def test_a_device_moves_its_range_and_keeps_the_subnets_in_use(client: LbaasClient) -> None:
    device = await client.create_device("noop")
    lb = (await client.create_lb(device)).json()["loadbalancer"]
    await client.wait_lb(lb["id"])
    moved = await client.http.put(
        f"/v2/lbaas/devices/{device['id']}", json={"device": {"vip_cidr": random_cidr()}}
    )
    assert moved.status_code == 200, moved.text
    served = moved.json()["device"]["vip_subnet_ids"]
    assert lb["vip_subnet_id"] in served and len(served) == 2, "the old one is still in use"
    again = await client.create_lb(device, name="on-the-new-range")
    assert again.status_code == 202, again.text
    assert again.json()["loadbalancer"]["vip_subnet_id"] in served
    assert (await client.get_lb(lb["id"])).json()["loadbalancer"]["vip_address"] == lb[
        "vip_address"
    ]


async def test_a_port_on_a_used_up_subnet_is_a_conflict(client: LbaasClient) -> None:
    """As Neutron's IpAddressGenerationFailure: 409, and no port is made."""
    network = await _network(client, "used-up-net")
    cidr = random_cidr()
    only = cidr[:-4] + "9"
    subnet = await _subnet(
        client, network, cidr=cidr, allocation_pools=[{"start": only, "end": only}]
    )
    body = {"port": {"network_id": network["id"], "fixed_ips": [{"subnet_id": subnet["id"]}]}}
    first = await client.http.post("/v2.0/ports", json=body)
    assert first.status_code == 201, first.text
    assert first.json()["port"]["fixed_ips"][0]["ip_address"] == only
    _assert_problem(await client.http.post("/v2.0/ports", json=body), 409, "in use")
    ports = (await client.http.get("/v2.0/ports", params={"network_id": network["id"]})).json()
    assert [port["id"] for port in ports["ports"]] == [first.json()["port"]["id"]]
