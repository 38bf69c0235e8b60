"""Bad input gets a problem body naming what was wrong, and changes nothing."""

from typing import Any

import pytest

from tests.support.client import LbaasClient
from tests.support.stack import Isolation

LBS = "/v2/lbaas/loadbalancers"


async def _counts(isolation: Isolation) -> tuple[int, int, int]:
    rows = await isolation.fetch(
        "SELECT (SELECT count(*) FROM loadbalancers) AS lbs,"
        " (SELECT count(*) FROM operations) AS ops, (SELECT count(*) FROM outbox) AS outbox"
    )
    return rows[0]["lbs"], rows[0]["ops"], rows[0]["outbox"]


def _assert_problem(response: Any, status: int, mentions: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["title"]
    assert mentions in problem["detail"], problem


@pytest.mark.parametrize(
    ("body", "status", "mentions"),
    [
        ('{"loadbalancer": {"name": "x",', 400, "not JSON"),
        ("[1, 2]", 400, "body"),
        ({"loadbalancer": {"provider": "no_such_driver"}}, 400, "provider"),
        ({"loadbalancer": {"provider": "noop", "vip_address": "192.0.2.7"}}, 400, "vip_address"),
        ({"loadbalancer": {"provider": "noop", "vip_address": "not-an-ip"}}, 400, "vip_address"),
        ({"loadbalancer": {"provider": "noop", "admin_state_up": "yes"}}, 400, "admin_state_up"),
        ({"loadbalancer": {"provider": "noop", "name": 42}}, 400, "name"),
        ({"loadbalancer": {"provider": "noop", "name": "a\nlisten pwned"}}, 400, "name"),
        ({"loadbalancer": {"provider": "noop", "name": "x" * 256}}, 400, "name"),
        ({"loadbalancer": {"provider": "noop", "colour": "red"}}, 400, "colour"),
        ({"loadbalancers": {"provider": "noop"}}, 400, "loadbalancer"),
        ({"loadbalancer": {"provider": "Noop!"}}, 400, "provider"),
        ({"loadbalancer": {"provider": "noop", "tags": ["ok", 3]}}, 400, "tags"),
    ],
)
async def test_bad_load_balancer_create_writes_nothing(
    client: LbaasClient, isolation: Isolation, body: Any, status: int, mentions: str
) -> None:
    await client.create_device("noop")
    before = await _counts(isolation)
    if isinstance(body, str):
        response = await client.http.post(
            LBS, content=body, headers={"content-type": "application/json"}
        )
    else:
        response = await client.http.post(LBS, json=body)
    _assert_problem(response, status, mentions)
    assert await _counts(isolation) == before


async def test_vip_outside_the_pinned_device_range_is_refused(
    client: LbaasClient, isolation: Isolation
) -> None:
    device = await client.create_device("noop", cidr="10.250.1.0/24")
    before = await _counts(isolation)
    response = await client.create_lb(device, vip_address="10.250.2.9")
    _assert_problem(response, 400, "vip_address")
    assert await _counts(isolation) == before


async def test_taken_vip_conflicts(client: LbaasClient, isolation: Isolation) -> None:
    device = await client.create_device("noop", cidr="10.250.3.0/24")
    first = await client.create_lb(device, vip_address="10.250.3.10")
    assert first.status_code == 202
    before = await _counts(isolation)
    response = await client.create_lb(device, vip_address="10.250.3.10")
    _assert_problem(response, 409, "10.250.3.10")
    assert await _counts(isolation) == before


async def test_no_device_with_room_is_503_and_writes_nothing(
    client: LbaasClient, isolation: Isolation
) -> None:
    device = await client.create_device("noop", capacity=1, enabled=False)
    before = await _counts(isolation)
    response = await client.http.post(
        LBS,
        json={"loadbalancer": {"provider": "noop", "vip_address": device["vip_cidr"][:-4] + "5"}},
    )
    _assert_problem(response, 503, "noop")
    assert response.headers["retry-after"]
    assert await _counts(isolation) == before


@pytest.mark.parametrize(
    ("body", "mentions"),
    [
        ({"driver": "noop", "management_url": "noop://a", "vip_cidr": "10.0.0.1/24"}, "vip_cidr"),
        (
            {"driver": "noop", "management_url": "noop://a b", "vip_cidr": "10.0.0.0/24"},
            "management_url",
        ),
        (
            {
                "driver": "noop",
                "management_url": "noop://a",
                "vip_cidr": "10.0.0.0/24",
                "capacity": 0,
            },
            "capacity",
        ),
        ({"driver": "noop\n", "management_url": "noop://a", "vip_cidr": "10.0.0.0/24"}, "driver"),
    ],
)
async def test_bad_device_is_refused(
    client: LbaasClient, isolation: Isolation, body: dict[str, Any], mentions: str
) -> None:
    before = await isolation.fetch("SELECT count(*) AS n FROM devices")
    response = await client.http.post("/v2/lbaas/devices", json={"device": {"name": "bad", **body}})
    _assert_problem(response, 400, mentions)
    assert await isolation.fetch("SELECT count(*) AS n FROM devices") == before


async def test_unknown_ids_and_paths_are_404_problems(client: LbaasClient) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for path in (f"{LBS}/{missing}", f"/v2/lbaas/operations/{missing}", "/v2/lbaas/nothing"):
        _assert_problem(await client.http.get(path), 404, "ot")
    _assert_problem(await client.http.get(f"{LBS}/not-a-uuid"), 400, "loadbalancer_id")


async def test_an_unsupported_method_is_405_with_every_allowed_one(client: LbaasClient) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for method, path, allowed in (
        ("PATCH", f"{LBS}/{missing}", "DELETE, GET, PUT"),
        ("OPTIONS", LBS, "GET, POST"),
        ("DELETE", "/healthz", "GET"),
    ):
        response = await client.http.request(method, path)
        _assert_problem(response, 405, "Method Not Allowed")
        assert response.headers["allow"] == allowed, (method, path)


async def test_service_endpoints(client: LbaasClient) -> None:
    root = (await client.http.get("/")).json()
    assert root["versions"][0]["id"] == "v2.0"
    assert root["versions"][0]["links"][0]["href"].endswith("/v2")
    assert (await client.http.get("/healthz")).status_code == 200
    assert (await client.http.get("/readyz")).json() == {"status": "ready"}
    alias = await client.http.get("/v2.0/lbaas/loadbalancers")
    assert alias.status_code == 200
    assert "loadbalancers" in alias.json()
