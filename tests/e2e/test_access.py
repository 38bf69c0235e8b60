"""Who may do what: tokens, roles, projects, quotas, rate limits and hostile bodies."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import openstack
import pytest

from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Api, Isolation, eventually, isolated, running

API = "/v2/lbaas"
STALE = {"If-Match": '"0-stale"'}


async def issue(admin: LbaasClient, name: str, project: str, role: str, **extra: Any) -> str:
    response = await admin.http.post(
        f"{API}/tokens",
        json={"token": {"name": name, "project_id": project, "role": role, **extra}},
    )
    assert response.status_code == 201, response.text
    secret: str = response.json()["token"]["token"]
    return secret


@dataclass
class World:
    admin: LbaasClient
    clients: dict[str, LbaasClient]
    tree: dict[str, str]
    """Paths of project A's objects, by resource type."""
    lb_id: str


@pytest.fixture(scope="module")
async def world(api: Api, client_factory: Any) -> AsyncIterator[World]:
    admin: LbaasClient = client_factory(None)
    device = await admin.create_device("noop")
    roles = {
        "admin": None,
        "member_a": ("proj-a", "member"),
        "observer_a": ("proj-a", "observer"),
        "member_b": ("proj-b", "member"),
        "global_observer": ("proj-c", "global_observer"),
    }
    clients = {"admin": admin}
    for label, spec in roles.items():
        if spec is not None:
            clients[label] = client_factory(await issue(admin, label, *spec))
    member = clients["member_a"]
    body = {
        "name": "tree-a",
        "provider": "noop",
        "listeners": [
            {
                "protocol": "HTTP",
                "protocol_port": 80,
                "default_pool": {
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [{"address": "127.0.3.1", "protocol_port": 80}],
                    "healthmonitor": {"type": "TCP", "delay": 2, "timeout": 1, "max_retries": 2},
                },
                "l7policies": [
                    {
                        "action": "REJECT",
                        "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/x"}],
                    }
                ],
            }
        ],
    }
    created = await member.http.post(f"{API}/loadbalancers", json={"loadbalancer": body})
    assert created.status_code == 202, created.text
    lb = created.json()["loadbalancer"]
    await member.wait_lb(lb["id"], ("ACTIVE",))
    pool = (await member.http.get(f"{API}/pools", params={"loadbalancer_id": lb["id"]})).json()
    pool_id = pool["pools"][0]["id"]
    member_id = pool["pools"][0]["members"][0]["id"]
    policies = (
        await member.http.get(f"{API}/l7policies", params={"listener_id": lb["listeners"][0]["id"]})
    ).json()["l7policies"]
    policy_id, rule_id = policies[0]["id"], policies[0]["rules"][0]["id"]
    tree = {
        "loadbalancer": f"{API}/loadbalancers/{lb['id']}",
        "listener": f"{API}/listeners/{lb['listeners'][0]['id']}",
        "pool": f"{API}/pools/{pool_id}",
        "member": f"{API}/pools/{pool_id}/members/{member_id}",
        "healthmonitor": f"{API}/healthmonitors/{pool['pools'][0]['healthmonitor_id']}",
        "l7policy": f"{API}/l7policies/{policy_id}",
        "rule": f"{API}/l7policies/{policy_id}/rules/{rule_id}",
    }
    assert device
    yield World(admin, clients, tree, lb["id"])


READ = {"admin": 200, "member_a": 200, "observer_a": 200, "member_b": 404, "global_observer": 200}
WRITE = {"admin": 412, "member_a": 412, "observer_a": 403, "member_b": 404, "global_observer": 403}
BODIES = {
    "loadbalancer": {"loadbalancer": {"name": "x"}},
    "listener": {"listener": {"name": "x"}},
    "pool": {"pool": {"name": "x"}},
    "member": {"member": {"name": "x"}},
    "healthmonitor": {"healthmonitor": {"name": "x"}},
    "l7policy": {"l7policy": {"name": "x"}},
    "rule": {"rule": {"invert": True}},
}


@pytest.mark.parametrize("role", list(READ))
@pytest.mark.parametrize("resource", list(BODIES))
async def test_roles_on_every_resource(world: World, role: str, resource: str) -> None:
    client = world.clients[role]
    path = world.tree[resource]
    got = await client.http.get(path)
    assert got.status_code == READ[role], got.text
    updated = await client.http.put(path, json=BODIES[resource], headers=STALE)
    assert updated.status_code == WRITE[role], updated.text
    deleted = await client.http.delete(path, headers=STALE)
    assert deleted.status_code == WRITE[role], deleted.text
    for response in (got, updated, deleted):
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"

    collection = path.rsplit("/", 1)[0]
    listing = await client.http.get(collection)
    if listing.status_code == 404:  # a member list of a pool the caller cannot see
        assert READ[role] == 404
        return
    listed = listing.json()
    ids = [item["id"] for item in listed[next(k for k in listed if not k.endswith("_links"))]]
    assert (path.rsplit("/", 1)[1] in ids) == (READ[role] == 200)


CREATE = {"admin": 409, "member_a": 409, "observer_a": 403, "member_b": 404, "global_observer": 403}
ADMIN_ONLY = {
    "admin": 400,
    "member_a": 403,
    "observer_a": 403,
    "member_b": 403,
    "global_observer": 403,
}


@pytest.mark.parametrize("role", list(CREATE))
async def test_creates_and_admin_extensions_by_role(world: World, role: str) -> None:
    client = world.clients[role]
    duplicate_port = {
        "listener": {"loadbalancer_id": world.lb_id, "protocol": "TCP", "protocol_port": 80}
    }
    created = await client.http.post(f"{API}/listeners", json=duplicate_port)
    assert created.status_code == CREATE[role], created.text

    bad_device = await client.http.post(f"{API}/devices", json={"device": {"name": "?"}})
    assert bad_device.status_code == ADMIN_ONLY[role]
    bad_token = await client.http.post(f"{API}/tokens", json={"token": {}})
    assert bad_token.status_code == ADMIN_ONLY[role]
    quota = await client.http.put(f"{API}/quotas/proj-z", json={"quota": {"pool": "many"}})
    assert quota.status_code == ADMIN_ONLY[role]
    devices = await client.http.get(f"{API}/devices")
    assert devices.status_code == (200 if role in ("admin", "global_observer") else 403)
    failover = await client.http.put(f"{API}/loadbalancers/{world.lb_id}/failover")
    assert failover.status_code == {"admin": 202, "member_b": 403}.get(role, 403)
    if failover.status_code == 202:
        await client.wait_lb(world.lb_id, ("ACTIVE",))


async def test_only_admins_choose_the_project(world: World) -> None:
    member = world.clients["member_a"]
    response = await member.http.post(
        f"{API}/loadbalancers", json={"loadbalancer": {"provider": "noop", "project_id": "proj-b"}}
    )
    assert response.status_code == 403
    assert "project_id" in response.json()["detail"]


async def test_operations_are_the_audit_trail(world: World) -> None:
    operations = await world.clients["member_a"].operations(world.lb_id)
    assert operations[0]["requested_by"] == "member_a"
    assert operations[0]["requested_by_token_id"]
    hidden = await world.clients["member_b"].operations(world.lb_id)
    assert hidden == []


async def test_authentication(api: Api, world: World, client_factory: Any) -> None:
    async with httpx.AsyncClient(base_url=api.url) as anonymous:
        for path in ("/", "/healthz", "/readyz", "/v2"):
            assert (await anonymous.get(path)).status_code == 200
        for headers in ({}, {"X-Auth-Token": "x" * 43}, {"Authorization": "Bearer nope"}):
            refused = await anonymous.get(f"{API}/loadbalancers", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert refused.headers["content-type"] == "application/problem+json"
        secret = world.clients["member_a"].http.headers["x-auth-token"]
        bearer = await anonymous.get(
            f"{API}/loadbalancers", headers={"Authorization": f"Bearer {secret}"}
        )
        assert bearer.status_code == 200
        assert secret not in bearer.text


async def test_revocation_and_expiry_take_effect_at_once(world: World, client_factory: Any) -> None:
    admin = world.admin
    token = await issue(admin, "short-lived", "proj-a", "observer", expires_in=1)
    client = client_factory(token)
    assert (await client.http.get(f"{API}/loadbalancers")).status_code == 200

    async def expired() -> bool | None:
        return True if (await client.http.get(f"{API}/loadbalancers")).status_code == 401 else None

    await eventually(expired, timeout=5, interval=0.1, what="the token to expire")
    assert "expired" in (await client.http.get(f"{API}/loadbalancers")).json()["detail"]

    revocable = await issue(admin, "revocable", "proj-a", "observer")
    listed = (await admin.http.get(f"{API}/tokens")).json()["tokens"]
    token_id = next(t["id"] for t in listed if t["name"] == "revocable")
    assert all("token" not in t for t in listed)
    victim = client_factory(revocable)
    assert (await victim.http.get(f"{API}/loadbalancers")).status_code == 200
    assert (await admin.http.delete(f"{API}/tokens/{token_id}")).status_code == 200
    revoked = await victim.http.get(f"{API}/loadbalancers")
    assert revoked.status_code == 401
    assert "revoked" in revoked.json()["detail"]


async def test_quota_holds_under_concurrency_and_counts_trees(
    world: World, client_factory: Any
) -> None:
    admin = world.admin
    limits = {"loadbalancer": 5, "member": 3}
    assert (await admin.http.put(f"{API}/quotas/proj-q", json={"quota": limits})).status_code == 202
    member = client_factory(await issue(admin, "quota-member", "proj-q", "member"))
    responses = await asyncio.gather(
        *(
            member.http.post(f"{API}/loadbalancers", json={"loadbalancer": {"provider": "noop"}})
            for _ in range(20)
        )
    )
    assert Counter(r.status_code for r in responses) == {202: 5, 403: 15}
    refused = next(r for r in responses if r.status_code == 403)
    assert "loadbalancer" in refused.json()["detail"]
    listed = (await member.http.get(f"{API}/loadbalancers")).json()["loadbalancers"]
    assert len(listed) == 5

    await admin.http.put(f"{API}/quotas/proj-q", json={"quota": {"loadbalancer": 6}})
    tree = {
        "provider": "noop",
        "pools": [
            {
                "protocol": "TCP",
                "lb_algorithm": "ROUND_ROBIN",
                "members": [{"address": f"127.0.4.{i}", "protocol_port": 80} for i in range(4)],
            }
        ],
    }
    too_big = await member.http.post(f"{API}/loadbalancers", json={"loadbalancer": tree})
    assert too_big.status_code == 403
    assert "member" in too_big.json()["detail"]
    tree["pools"][0]["members"] = tree["pools"][0]["members"][:3]  # type: ignore[index]
    fits = await member.http.post(f"{API}/loadbalancers", json={"loadbalancer": tree})
    assert fits.status_code == 202, fits.text
    lb = fits.json()["loadbalancer"]
    await member.wait_lb(lb["id"], ("ACTIVE",))
    pool_id = lb["pools"][0]["id"]
    batch = [{"address": f"127.0.5.{i}", "protocol_port": 80} for i in range(4)]
    over = await member.http.put(f"{API}/pools/{pool_id}/members", json={"members": batch})
    assert over.status_code == 403
    shown = (await member.http.get(f"{API}/quotas/proj-q")).json()["quota"]
    assert shown["loadbalancer"] == 6 and shown["pool"] == -1
    defaults = (await member.http.get(f"{API}/quotas/defaults")).json()["quota"]
    assert defaults["loadbalancer"] == -1


async def test_a_create_under_no_limit_takes_no_quota_lock(
    world: World, client_factory: Any, isolation: Isolation
) -> None:
    """The project's quota row held locked elsewhere does not hold up a create that adds only
    kinds the project may have without limit."""
    admin = world.admin
    limited = {"quota": {"member": 10}}
    assert (await admin.http.put(f"{API}/quotas/proj-free", json=limited)).status_code == 202
    member = client_factory(await issue(admin, "free-member", "proj-free", "member"))
    holder = await isolation.db()
    try:
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM quotas WHERE project_id = $1 FOR UPDATE", "proj-free"
            )
            created = await asyncio.wait_for(
                member.http.post(
                    f"{API}/loadbalancers", json={"loadbalancer": {"provider": "noop"}}
                ),
                timeout=10,
            )
            assert created.status_code == 202, created.text
    finally:
        await holder.close()


async def test_hostile_bodies(world: World) -> None:
    client = world.clients["member_a"]
    huge = await client.http.post(
        f"{API}/loadbalancers",
        content=b'{"loadbalancer": {"name": "' + b"x" * (1024 * 1024 + 10) + b'"}}',
        headers={"content-type": "application/json"},
    )
    assert huge.status_code == 413
    deep = await client.http.post(
        f"{API}/loadbalancers",
        content=b'{"loadbalancer": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
        headers={"content-type": "application/json"},
    )
    assert deep.status_code == 400
    assert "nested" in deep.json()["detail"]
    capped = await client.http.get(f"{API}/loadbalancers", params={"limit": 100_000})
    assert capped.status_code == 200


async def test_rate_limit_per_token(log_dir: Path) -> None:
    async with isolated() as isolation:
        api = Api(isolation.env(rate_limit=1, rate_burst=5), log_dir)
        async with running(api), authenticated(api.url) as http:
            api.start()
            await api.wait_ready("/readyz")
            codes = [(await http.get(f"{API}/loadbalancers")).status_code for _ in range(5)]
            assert codes == [200] * 5
            limited = await http.get(f"{API}/loadbalancers")
            assert limited.status_code == 429
            assert int(limited.headers["retry-after"]) >= 1
            assert (await http.get("/healthz")).status_code == 200


def _sdk(url: str, token: str) -> list[str]:
    conn = openstack.connect(
        auth_type="admin_token",
        auth={"token": token, "endpoint": url},
        load_balancer_endpoint_override=url,
    )
    return [lb.name for lb in conn.load_balancer.load_balancers()]


async def test_openstacksdk_with_member_and_revoked_tokens(api: Api, world: World) -> None:
    token = await issue(world.admin, "sdk-member", "proj-a", "member")
    assert "tree-a" in await asyncio.to_thread(_sdk, api.url, token)
    listed = (await world.admin.http.get(f"{API}/tokens")).json()["tokens"]
    token_id = next(t["id"] for t in listed if t["name"] == "sdk-member")
    await world.admin.http.delete(f"{API}/tokens/{token_id}")
    with pytest.raises(openstack.exceptions.HttpException) as refused:
        await asyncio.to_thread(_sdk, api.url, token)
    assert refused.value.status_code == 401
