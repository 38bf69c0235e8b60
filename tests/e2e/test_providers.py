"""Providers through the API: what the agents announced, and the 400 for an option a provider
does not support (on creates, updates and single-call tree creates), which changes nothing.

Announcements of providers no agent runs (``restricted``, ``late``) are published here as the
broker's admin, as an agent would; their devices' commands fail (no agent has the driver),
which leaves their load balancers in ERROR, open to further changes.
"""

import asyncio
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import openstack
import pytest

from api_service.services.providers import PLACEMENT_OPTIONS
from shared.capabilities import BASELINE, EVERY_OPTION, Capabilities, ProviderDeclaration
from shared.messages import ProviderAnnouncement
from shared.topology import PROVIDERS_ROUTING_KEY
from tests.e2e.test_access import issue
from tests.support.client import ADMIN_TOKEN, LbaasClient, authenticated
from tests.support.stack import BIN, Api, Isolation, eventually

API = "/v2/lbaas"


async def announce(
    isolation: Isolation,
    name: str,
    capabilities: Capabilities,
    *,
    description: str | None = None,
    announced_at: datetime | None = None,
) -> None:
    """Publish an announcement of provider ``name``, as an agent would."""
    announcement = ProviderAnnouncement(
        agent_id="agent-forged",
        announced_at=announced_at or datetime.now(UTC),
        providers=[
            ProviderDeclaration(
                name=name,
                description=description or f"{name} for tests",
                capabilities=capabilities,
                flavor_capabilities={"topology": "SINGLE or ACTIVE_STANDBY"},
            )
        ],
    )
    connection = await aio_pika.connect(isolation.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(isolation.names.providers_exchange, ensure=False)
        message = aio_pika.Message(announcement.model_dump_json().encode())
        await exchange.publish(message, routing_key=PROVIDERS_ROUTING_KEY, mandatory=True)


async def listed(client: LbaasClient, name: str, description: str) -> None:
    async def shown() -> bool | None:
        providers = (await client.http.get(f"{API}/providers")).json()["providers"]
        return True if {"name": name, "description": description} in providers else None

    await eventually(shown, what=f"provider {name} listed")


@pytest.fixture(scope="module")
async def restricted(
    isolation: Isolation, client_factory: Callable[[str | None], LbaasClient]
) -> AsyncIterator[dict[str, Any]]:
    """A device of the provider ``restricted``, announced with the baseline only."""
    client = client_factory(None)
    await announce(isolation, "restricted", BASELINE)
    await listed(client, "restricted", "restricted for tests")
    yield await client.create_device("restricted")


async def test_providers_are_the_announced_drivers_for_every_project(
    client: LbaasClient, api: Api, announced: None
) -> None:
    response = await client.http.get(f"{API}/providers")
    assert response.status_code == 200, response.text
    providers = {p["name"]: p for p in response.json()["providers"]}
    assert {"haproxy", "noop", "sim"} <= set(providers)
    assert set(providers["haproxy"]) == {"name", "description"}
    assert "HAProxy" in providers["haproxy"]["description"]

    token = await issue(client, f"reader-{uuid.uuid4().hex[:8]}", "p-providers", "member")
    async with authenticated(api.url, token) as member:
        names = (await member.get(f"{API}/providers", params={"fields": "name"})).json()
    assert {"name": "haproxy"} in names["providers"]
    assert all(set(p) == {"name"} for p in names["providers"])


async def test_capabilities_as_octavia_lists_them(
    client: LbaasClient, restricted: dict[str, Any]
) -> None:
    flavor = await client.http.get(f"{API}/providers/restricted/flavor_capabilities")
    assert flavor.status_code == 200, flavor.text
    placement = {"name": "device_group", "description": PLACEMENT_OPTIONS["device_group"]}
    assert flavor.json() == {
        "flavor_capabilities": [
            placement,
            {"name": "topology", "description": "SINGLE or ACTIVE_STANDBY"},
        ]
    }
    none = await client.http.get(
        f"{API}/providers/restricted/flavor_capabilities", params={"name": "other"}
    )
    assert none.json() == {"flavor_capabilities": []}
    zones = await client.http.get(f"{API}/providers/restricted/availability_zone_capabilities")
    assert zones.status_code == 200, zones.text
    assert zones.json() == {"availability_zone_capabilities": [placement]}

    missing = await client.http.get(f"{API}/providers/nosuch/flavor_capabilities")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert "nosuch" in missing.json()["detail"]


async def _loadbalancers(client: LbaasClient, device: dict[str, Any]) -> list[str]:
    response = await client.http.get(f"{API}/loadbalancers", params={"device_id": device["id"]})
    return sorted(lb["id"] for lb in response.json()["loadbalancers"])


def _refused(response: Any, provider: str, option: str) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert detail == f"Provider '{provider}' does not support a requested option: {option}."


async def test_a_tree_create_with_an_unsupported_option_creates_nothing(
    client: LbaasClient, restricted: dict[str, Any]
) -> None:
    before = await _loadbalancers(client, restricted)
    pool = {
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [{"address": "127.0.0.1", "protocol_port": 8080}],
        "healthmonitor": {"type": "TLS-HELLO", "delay": 1, "timeout": 1, "max_retries": 1},
    }
    listener = {"protocol": "HTTP", "protocol_port": 80, "default_pool": pool}
    response = await client.create_lb(restricted, listeners=[listener])
    _refused(response, "restricted", "health monitor type TLS-HELLO")
    assert response.json()["errors"] == [
        {
            "field": "type",
            "message": "provider 'restricted' does not support health monitor type TLS-HELLO",
        }
    ]
    udp = await client.create_lb(restricted, listeners=[{"protocol": "UDP", "protocol_port": 53}])
    _refused(udp, "restricted", "listener protocol UDP")
    assert await _loadbalancers(client, restricted) == before


async def test_creates_and_updates_with_unsupported_options_change_nothing(
    client: LbaasClient, restricted: dict[str, Any]
) -> None:
    pool = {"protocol": "TCP", "lb_algorithm": "SOURCE_IP"}
    listener = {"protocol": "TCP", "protocol_port": 80, "default_pool": pool}
    created = await client.create_lb(restricted, listeners=[listener])
    assert created.status_code == 202, created.text
    lb = await client.wait_lb(created.json()["loadbalancer"]["id"])
    operations = await client.operations(lb["id"])
    pool_id = lb["pools"][0]["id"]
    before = (await client.http.get(f"{API}/pools/{pool_id}")).json()["pool"]

    update = await client.http.put(
        f"{API}/pools/{pool_id}", json={"pool": {"lb_algorithm": "SOURCE_IP_PORT"}}
    )
    _refused(update, "restricted", "lb_algorithm SOURCE_IP_PORT")
    proxy = await client.http.post(
        f"{API}/pools",
        json={
            "pool": {
                "loadbalancer_id": lb["id"],
                "protocol": "PROXY",
                "lb_algorithm": "ROUND_ROBIN",
            }
        },
    )
    _refused(proxy, "restricted", "pool protocol PROXY")
    sctp = await client.http.post(
        f"{API}/listeners",
        json={"listener": {"loadbalancer_id": lb["id"], "protocol": "SCTP", "protocol_port": 9}},
    )
    _refused(sctp, "restricted", "listener protocol SCTP")

    after = (await client.http.get(f"{API}/pools/{pool_id}")).json()["pool"]
    assert after == before
    assert [p["id"] for p in (await client.get_lb(lb["id"])).json()["loadbalancer"]["pools"]] == [
        pool_id
    ]
    assert await client.operations(lb["id"]) == operations

    supported = await client.http.put(
        f"{API}/pools/{pool_id}", json={"pool": {"lb_algorithm": "LEAST_CONNECTIONS"}}
    )
    assert supported.status_code == 202, supported.text


async def test_a_provider_is_held_to_the_baseline_until_it_announces(
    client: LbaasClient, isolation: Isolation
) -> None:
    device = await client.create_device("late")
    proxy_pool = {"protocol": "PROXY", "lb_algorithm": "ROUND_ROBIN"}
    listener = {"protocol": "TCP", "protocol_port": 80, "default_pool": proxy_pool}
    refused = await client.create_lb(device, listeners=[listener])
    _refused(refused, "late", "pool protocol PROXY")
    baseline = await client.create_lb(
        device, pools=[{"protocol": "TCP", "lb_algorithm": "SOURCE_IP"}]
    )
    assert baseline.status_code == 202, baseline.text

    await announce(isolation, "late", EVERY_OPTION)
    await listed(client, "late", "late for tests")
    accepted = await client.create_lb(device, listeners=[listener], name=f"late-{uuid.uuid4()}")
    assert accepted.status_code == 202, accepted.text


def _cli(url: str, *argv: str) -> Any:
    """``openstack loadbalancer ARGV -f json`` against the API at ``url``, with the admin token."""
    answered = subprocess.run(
        [
            str(BIN / "openstack"),
            "--os-auth-type",
            "admin_token",
            "--os-token",
            ADMIN_TOKEN,
            "--os-endpoint",
            url,
            "loadbalancer",
            *argv,
            "-f",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert answered.returncode == 0, answered.stdout + answered.stderr
    return json.loads(answered.stdout)


def _sdk(url: str) -> tuple[set[str], list[dict[str, Any]]]:
    conn = openstack.connect(
        auth_type="admin_token",
        auth={"token": ADMIN_TOKEN, "endpoint": url},
        load_balancer_endpoint_override=url,
    )
    lb_api: Any = conn.load_balancer
    names = {provider.name for provider in lb_api.providers()}
    capabilities = [
        {"name": c.name, "description": c.description}
        for c in lb_api.provider_flavor_capabilities("restricted")
    ]
    return names, capabilities


async def test_the_openstack_cli_and_sdk_list_providers_and_capabilities(
    api: Api, restricted: dict[str, Any], announced: None
) -> None:
    names, capabilities = await asyncio.to_thread(_sdk, api.url)
    assert {"haproxy", "noop", "sim", "restricted"} <= names
    assert capabilities == [
        {"name": "device_group", "description": PLACEMENT_OPTIONS["device_group"]},
        {"name": "topology", "description": "SINGLE or ACTIVE_STANDBY"},
    ]

    listed = await asyncio.to_thread(_cli, api.url, "provider", "list")
    assert {"name": "restricted", "description": "restricted for tests"} in listed
    shown = await asyncio.to_thread(_cli, api.url, "provider", "capability", "list", "restricted")
    assert sorted(row["name"] for row in shown) == ["device_group", "device_group", "topology"]


@pytest.mark.parametrize("header", ["X-Forwarded-IP", "X-Client-IP", "X-Real-IP"])
async def test_client_address_headers_wait_for_a_provider_that_announced_them(
    client: LbaasClient, restricted: dict[str, Any], header: str
) -> None:
    listener = {"protocol": "HTTP", "protocol_port": 80, "insert_headers": {header: "true"}}
    response = await client.create_lb(restricted, listeners=[listener])
    _refused(response, "restricted", f"insert_headers {header}")


@pytest.mark.parametrize(
    ("protocol", "monitor"), [("UDP", "PING"), ("SCTP", "TLS-HELLO"), ("TCP", "UDP-CONNECT")]
)
async def test_datagram_monitors_and_pools_go_together_as_in_octavia(
    client: LbaasClient, announced: None, protocol: str, monitor: str
) -> None:
    device = await client.create_device("noop")
    healthmonitor = {"type": monitor, "delay": 1, "timeout": 1, "max_retries": 1}
    pool = {"protocol": protocol, "lb_algorithm": "ROUND_ROBIN", "healthmonitor": healthmonitor}
    response = await client.create_lb(device, pools=[pool])
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["field"] == "type"
    accepted = {"UDP": "UDP-CONNECT", "SCTP": "SCTP", "TCP": "TCP"}[protocol]
    pool["healthmonitor"] = {**healthmonitor, "type": accepted}
    assert (await client.create_lb(device, pools=[pool])).status_code == 202


async def test_client_certificate_headers_are_for_tls_terminating_listeners(
    client: LbaasClient, restricted: dict[str, Any], announced: None
) -> None:
    headers = {"X-SSL-Client-CN": "true", "X-Forwarded-For": "true"}
    http = {"protocol": "HTTP", "protocol_port": 80, "insert_headers": headers}
    refused = await client.create_lb(restricted, listeners=[http])
    assert refused.status_code == 400, refused.text
    assert "X-SSL-Client-CN: only TERMINATED_HTTPS listeners" in refused.json()["detail"]

    terminated = {**http, "protocol": "TERMINATED_HTTPS"}
    unsupported = await client.create_lb(restricted, listeners=[terminated])
    _refused(unsupported, "restricted", "listener protocol TERMINATED_HTTPS")
    noop = await client.create_device("noop")
    accepted = await client.create_lb(noop, listeners=[terminated])
    assert accepted.status_code == 202, accepted.text


async def test_an_older_announcement_changes_nothing(
    client: LbaasClient, isolation: Isolation
) -> None:
    await announce(isolation, "ordered", EVERY_OPTION, description="as announced last")
    await listed(client, "ordered", "as announced last")
    earlier = datetime.now(UTC) - timedelta(hours=1)
    await announce(isolation, "ordered", BASELINE, description="stale", announced_at=earlier)
    # Announcements are consumed in order: once the next one shows, the stale one was read.
    await announce(isolation, "ordered_marker", BASELINE)
    await listed(client, "ordered_marker", "ordered_marker for tests")
    providers = (await client.http.get(f"{API}/providers")).json()["providers"]
    assert {"name": "ordered", "description": "as announced last"} in providers
