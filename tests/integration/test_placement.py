"""Placement: the device with the most free capacity wins; capacity holds under concurrency."""

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Api, Isolation, eventually, isolated, running

LBS = "/v2/lbaas/loadbalancers"


@pytest.fixture
async def lone_stack(log_dir: Path) -> AsyncIterator[tuple[LbaasClient, Isolation]]:
    """An API on a database of its own (no agent: placement happens at the API)."""
    async with isolated() as isolation:
        api = Api(isolation.env(), log_dir)
        async with running(api), authenticated(api.url) as http:
            api.start()
            await api.wait_ready("/readyz")
            yield LbaasClient(http), isolation


@pytest.fixture
def lone_api(lone_stack: tuple[LbaasClient, Isolation]) -> LbaasClient:
    return lone_stack[0]


async def _create(client: LbaasClient) -> httpx.Response:
    return await client.http.post(LBS, json={"loadbalancer": {"provider": "noop"}})


async def test_most_free_capacity_first_then_503(lone_api: LbaasClient) -> None:
    big = await lone_api.create_device("noop", capacity=3)
    small = await lone_api.create_device("noop", capacity=1)
    await lone_api.create_device("noop", capacity=50, enabled=False)

    placed = []
    for _ in range(4):
        response = await _create(lone_api)
        assert response.status_code == 202, response.text
        placed.append(response.json()["loadbalancer"]["device_id"])
    assert placed[:2] == [big["id"], big["id"]]
    assert Counter(placed) == {big["id"]: 3, small["id"]: 1}

    full = await _create(lone_api)
    assert full.status_code == 503
    assert full.headers["content-type"] == "application/problem+json"
    assert "noop" in full.json()["detail"]
    assert len((await lone_api.http.get(LBS)).json()["loadbalancers"]) == 4


async def test_capacity_holds_under_concurrent_creates(lone_api: LbaasClient) -> None:
    device = await lone_api.create_device("noop", capacity=5)
    responses = await asyncio.gather(*(_create(lone_api) for _ in range(12)))
    assert Counter(r.status_code for r in responses) == {202: 5, 503: 7}
    vips = {r.json()["loadbalancer"]["vip_address"] for r in responses if r.status_code == 202}
    assert len(vips) == 5
    listed = (await lone_api.http.get(f"/v2/lbaas/devices/{device['id']}")).json()["device"]
    assert listed["loadbalancer_count"] == 5


async def test_a_create_locks_its_device_only_while_it_commits(
    lone_stack: tuple[LbaasClient, Isolation],
) -> None:
    """With the device row held elsewhere, a create does all its work (VIP, rows, command)
    and waits only in its commit, which counts its place; then it is accepted."""
    client, isolation = lone_stack
    device = await client.create_device("noop", capacity=10)
    holder, watcher = await isolation.db(), await isolation.db()
    try:
        async with holder.transaction():
            await holder.execute(
                "SELECT 1 FROM devices WHERE id = $1 FOR NO KEY UPDATE", uuid.UUID(device["id"])
            )
            create = asyncio.create_task(_create(client))

            async def waiting() -> asyncpg.Record | None:
                found: asyncpg.Record | None = await watcher.fetchrow(
                    "SELECT pid, query FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                return found

            waits = await eventually(waiting, timeout=10, what="the create to wait on a lock")
            assert waits["query"].startswith("COMMIT"), waits
            written = await watcher.fetch(
                "SELECT c.relname FROM pg_locks l JOIN pg_class c ON c.oid = l.relation"
                " WHERE l.pid = $1 AND l.mode = 'RowExclusiveLock' AND l.granted",
                waits["pid"],
            )
            assert {"loadbalancers", "vip_ports", "operations", "outbox"} <= {
                row["relname"] for row in written
            }
            assert not create.done()
        created = await asyncio.wait_for(create, timeout=10)
        assert created.status_code == 202, created.text
    finally:
        await holder.close()
        await watcher.close()


async def test_concurrent_creates_on_one_subnet_claim_distinct_addresses(
    lone_api: LbaasClient,
) -> None:
    """Creates running at once on two devices serving one subnet each claim another address,
    the lowest free ones, none refused."""
    for _ in range(2):
        await lone_api.create_device("noop", cidr="10.81.0.0/24", capacity=100)
    responses = await asyncio.gather(*(_create(lone_api) for _ in range(20)))
    assert [r.status_code for r in responses] == [202] * 20, [r.text for r in responses]
    vips = sorted(
        (r.json()["loadbalancer"]["vip_address"] for r in responses),
        key=lambda a: int(a.rsplit(".", 1)[1]),
    )
    assert vips == [f"10.81.0.{i}" for i in range(1, 21)]


async def test_device_updates_respect_what_it_hosts(lone_api: LbaasClient) -> None:
    device = await lone_api.create_device("noop", cidr="10.77.0.0/24", capacity=2)
    path = f"/v2/lbaas/devices/{device['id']}"
    assert (await _create(lone_api)).status_code == 202

    changed = await lone_api.http.put(path, json={"device": {"capacity": 4, "enabled": False}})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["device"]["capacity"], changed.json()["device"]["enabled"]) == (4, False)
    assert (await _create(lone_api)).status_code == 503

    for body, status in (
        ({"driver": "sim"}, 409),
        ({"vip_cidr": "10.78.0.0/24"}, 200),  # and it still serves the subnet of its VIP
        ({"vip_cidr": "10.77.0.0/16"}, 200),
        ({"name": "x y"}, 400),
    ):
        response = await lone_api.http.put(path, json={"device": body})
        assert response.status_code == status, (body, response.text)
    shown = (await lone_api.http.get(path)).json()["device"]
    assert shown["vip_cidr"] == "10.77.0.0/16"
    assert len(shown["vip_subnet_ids"]) == 2, "10.77.0.0/24 (its VIP's) and 10.77.0.0/16"


async def test_vips_fill_the_range_gaps_included(lone_api: LbaasClient) -> None:
    device = await lone_api.create_device("noop", cidr="10.79.0.0/29", capacity=100)
    last = await lone_api.create_lb(device, vip_address="10.79.0.6")
    assert last.status_code == 202, last.text
    third = await lone_api.create_lb(device, vip_address="10.79.0.3")
    assert third.status_code == 202, third.text

    allocated = []
    for _ in range(4):
        response = await lone_api.create_lb(device)
        assert response.status_code == 202, response.text
        allocated.append(response.json()["loadbalancer"]["vip_address"])
    assert sorted(allocated) == ["10.79.0.1", "10.79.0.2", "10.79.0.4", "10.79.0.5"]

    exhausted = await lone_api.create_lb(device)
    assert exhausted.status_code == 503
    assert "10.79.0.0/29" in exhausted.json()["detail"]
