"""The real ``openstack`` CLI (python-openstackclient + python-octaviaclient), configured only
by a ``clouds.yaml`` with application-credential authentication, drives the service: no
Keystone, no Neutron, no endpoint overrides."""

import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from ipaddress import ip_address, ip_network
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.client import LbaasClient, random_cidr
from tests.support.stack import BIN, Api

API = "/v2/lbaas"
CLI_TIMEOUT = 120
"""Seconds one command may take, ``--wait`` included."""


@dataclass(frozen=True)
class Cli:
    """``openstack`` run as a user of one cloud of a clouds.yaml."""

    config: Path
    cloud: str

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": os.environ["PATH"],
            "HOME": str(self.config.parent),
            "OS_CLIENT_CONFIG_FILE": str(self.config),
            "OS_CLOUD": self.cloud,
        }
        done = subprocess.run(
            [str(BIN / "openstack"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"openstack {' '.join(args)}:\n{done.stderr}"
        return done

    def json(self, *args: str) -> Any:
        """The command's answer, as ``-f json`` prints it."""
        return json.loads(self.run(*args, "-f", "json").stdout)


async def _credential(admin: LbaasClient, project: str, role: str) -> dict[str, str]:
    name = f"cli-{role}-{uuid.uuid4().hex[:6]}"
    response = await admin.http.post(
        f"{API}/tokens", json={"token": {"name": name, "project_id": project, "role": role}}
    )
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    return {
        "application_credential_id": token["id"],
        "application_credential_secret": token["token"],
    }


@pytest.fixture(scope="module")
async def clouds(
    api: Api,
    client_factory: Callable[[str | None], LbaasClient],
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Callable[[str], Cli]]:
    """A clouds.yaml with an admin cloud and a member cloud of a project of its own."""
    client = client_factory(None)
    project = f"cli-{uuid.uuid4().hex[:8]}"
    auth_url = f"{api.url}/identity/v3"
    config: dict[str, Any] = {"clouds": {}}
    for cloud, (cloud_project, role) in {
        "admin": ("admin", "admin"),
        "member": (project, "member"),
    }.items():
        config["clouds"][cloud] = {
            "auth_type": "v3applicationcredential",
            "auth": {"auth_url": auth_url, **await _credential(client, cloud_project, role)},
            "region_name": "RegionOne",
            "interface": "public",
            "identity_api_version": 3,
        }
    path = tmp_path_factory.mktemp("clouds") / "clouds.yaml"
    path.write_text(yaml.safe_dump(config))
    yield lambda cloud: Cli(path, cloud)


@pytest.fixture(scope="module")
async def vip_subnet(client_factory: Callable[[str | None], LbaasClient]) -> dict[str, Any]:
    """A VIP subnet by a name of its own, served by a noop device."""
    client = client_factory(None)
    name = f"cli-vips-{uuid.uuid4().hex[:6]}"
    network = await client.http.post("/v2.0/networks", json={"network": {"name": f"{name}-net"}})
    assert network.status_code == 201, network.text
    cidr = random_cidr()
    subnet = await client.http.post(
        "/v2.0/subnets",
        json={
            "subnet": {"name": name, "network_id": network.json()["network"]["id"], "cidr": cidr}
        },
    )
    assert subnet.status_code == 201, subnet.text
    served: dict[str, Any] = subnet.json()["subnet"]
    await client.create_device("noop", vip_subnet_ids=[served["id"]])
    return served


async def test_the_cli_builds_inspects_and_deletes_a_whole_tree(
    clouds: Callable[[str], Cli], vip_subnet: dict[str, Any]
) -> None:
    member, admin = clouds("member"), clouds("admin")
    lb = member.json(
        "loadbalancer",
        "create",
        "--name",
        "cli-web",
        "--provider",
        "noop",
        "--vip-subnet-id",
        vip_subnet["name"],
        "--wait",
    )
    assert (lb["provisioning_status"], lb["vip_subnet_id"]) == ("ACTIVE", vip_subnet["id"])
    assert ip_address(lb["vip_address"]) in ip_network(vip_subnet["cidr"])
    assert lb["vip_port_id"]

    listener = member.json(
        "loadbalancer",
        "listener",
        "create",
        "--name",
        "cli-http",
        "--protocol",
        "HTTP",
        "--protocol-port",
        "80",
        "cli-web",
        "--wait",
    )
    pool = member.json(
        "loadbalancer",
        "pool",
        "create",
        "--name",
        "cli-pool",
        "--listener",
        "cli-http",
        "--protocol",
        "HTTP",
        "--lb-algorithm",
        "ROUND_ROBIN",
        "--description",
        "web servers",
        "--wait",
    )
    assert pool["description"] == "web servers"
    added = member.json(
        "loadbalancer",
        "member",
        "create",
        "--name",
        "cli-member",
        "--address",
        "192.0.2.10",
        "--protocol-port",
        "8080",
        "cli-pool",
        "--wait",
    )
    monitor = member.json(
        "loadbalancer",
        "healthmonitor",
        "create",
        "--name",
        "cli-monitor",
        "--delay",
        "5",
        "--timeout",
        "3",
        "--max-retries",
        "3",
        "--type",
        "HTTP",
        "--url-path",
        "/healthz",
        "cli-pool",
        "--wait",
    )
    assert monitor["provisioning_status"] == "ACTIVE"
    policy = member.json(
        "loadbalancer",
        "l7policy",
        "create",
        "--name",
        "cli-policy",
        "--action",
        "REJECT",
        "cli-http",
        "--wait",
    )
    rule = member.json(
        "loadbalancer",
        "l7rule",
        "create",
        "--type",
        "PATH",
        "--compare-type",
        "STARTS_WITH",
        "--value",
        "/admin",
        policy["id"],
        "--wait",
    )
    assert rule["value"] == "/admin"

    status = json.loads(member.run("loadbalancer", "status", "show", "cli-web").stdout)
    [shown_listener] = status["loadbalancer"]["listeners"]
    assert shown_listener["id"] == listener["id"]
    [shown_pool] = shown_listener["pools"]
    assert [m["id"] for m in shown_pool["members"]] == [added["id"]]
    assert shown_pool["health_monitor"]["id"] == monitor["id"]
    for stats in (
        member.json("loadbalancer", "stats", "show", "cli-web"),
        member.json("loadbalancer", "listener", "stats", "show", "cli-http"),
    ):
        assert {"active_connections", "bytes_in", "bytes_out", "total_connections"} <= set(stats)

    member.run("loadbalancer", "member", "set", "--weight", "5", "cli-pool", "cli-member", "--wait")
    shown = member.json("loadbalancer", "member", "show", "cli-pool", "cli-member")
    assert shown["weight"] == 5
    member.run("loadbalancer", "pool", "unset", "--description", "cli-pool", "--wait")
    assert member.json("loadbalancer", "pool", "show", "cli-pool")["description"] == ""

    duplicate = member.run(
        "loadbalancer",
        "listener",
        "create",
        "--protocol",
        "HTTP",
        "--protocol-port",
        "80",
        "cli-web",
        check=False,
    )
    assert duplicate.returncode != 0
    assert "80" in duplicate.stderr and "409" in duplicate.stderr, duplicate.stderr

    refused = member.run("loadbalancer", "failover", "cli-web", check=False)
    assert refused.returncode != 0 and "admin" in refused.stderr, refused.stderr
    admin.run("loadbalancer", "failover", "cli-web", "--wait")

    member.run("loadbalancer", "delete", "--cascade", "--wait", "cli-web")
    assert member.json("loadbalancer", "list", "--name", "cli-web") == []


async def test_the_cli_lists_providers_flavors_zones_and_sets_quotas(
    clouds: Callable[[str], Cli], client: LbaasClient, vip_subnet: dict[str, Any]
) -> None:
    member, admin = clouds("member"), clouds("admin")
    providers = {
        p["name"]: p["description"] for p in member.json("loadbalancer", "provider", "list")
    }
    assert "noop" in providers

    group, suffix = f"cli-{uuid.uuid4().hex[:6]}", uuid.uuid4().hex[:6]
    await client.create_device("noop", vip_subnet_ids=[vip_subnet["id"]], device_group=group)
    data = json.dumps({"device_group": group})
    admin.json(
        "loadbalancer",
        "flavorprofile",
        "create",
        "--name",
        f"fp-{suffix}",
        "--provider",
        "noop",
        "--flavor-data",
        data,
    )
    flavor = admin.json(
        "loadbalancer",
        "flavor",
        "create",
        "--name",
        f"gold-{suffix}",
        "--flavorprofile",
        f"fp-{suffix}",
        "--enable",
    )
    admin.json(
        "loadbalancer",
        "availabilityzoneprofile",
        "create",
        "--name",
        f"azp-{suffix}",
        "--provider",
        "noop",
        "--availability-zone-data",
        data,
    )
    admin.json(
        "loadbalancer",
        "availabilityzone",
        "create",
        "--name",
        f"az-{suffix}",
        "--availabilityzoneprofile",
        f"azp-{suffix}",
    )
    flavors = {f["name"]: f for f in member.json("loadbalancer", "flavor", "list")}
    assert flavors[f"gold-{suffix}"]["id"] == flavor["id"]
    zones = {z["name"] for z in member.json("loadbalancer", "availabilityzone", "list")}
    assert f"az-{suffix}" in zones

    lb = member.json(
        "loadbalancer",
        "create",
        "--name",
        f"placed-{suffix}",
        "--provider",
        "noop",
        "--vip-subnet-id",
        vip_subnet["name"],
        "--flavor",
        f"gold-{suffix}",
        "--availability-zone",
        f"az-{suffix}",
        "--wait",
    )
    assert (lb["flavor_id"], lb["availability_zone"]) == (flavor["id"], f"az-{suffix}")
    shown = (await client.http.get(f"{API}/loadbalancers/{lb['id']}")).json()["loadbalancer"]
    device = (await client.http.get(f"{API}/devices/{shown['device_id']}")).json()["device"]
    assert device["device_group"] == group
    member.run("loadbalancer", "delete", "--wait", lb["id"])

    project = member.json("token", "issue")["project_id"]
    quota = member.json("loadbalancer", "quota", "show", project)
    assert {"load_balancer", "listener", "pool", "member", "health_monitor"} <= set(quota)
    admin.run("loadbalancer", "quota", "set", "--loadbalancer", "3", "--member", "7", project)
    quota = member.json("loadbalancer", "quota", "show", project)
    assert (quota["load_balancer"], quota["member"]) == (3, 7)
    admin.run("loadbalancer", "quota", "reset", project)
    quota = member.json("loadbalancer", "quota", "show", project)
    assert (quota["load_balancer"], quota["member"]) != (3, 7)
