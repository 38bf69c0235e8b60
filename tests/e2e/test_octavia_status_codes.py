"""``LBAAS_STATUS_CODES=octavia``: changes answer as Octavia's do (201, 200, 204), which
clients that check the code expect (gophercloud's ``pools.Update`` takes 200 and nothing
else), and the API's OpenAPI document says so."""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Agent, Api, Isolation, running

API = "/v2/lbaas"


@pytest.fixture(scope="module")
async def octavia(isolation: Isolation, log_dir: Path, agent: Agent) -> AsyncIterator[LbaasClient]:
    """An API of the session's stack (its agent applies the changes) in Octavia's codes."""
    api = Api(isolation.api_env(status_codes="octavia"), log_dir)
    async with running(api), authenticated(api.url, timeout=10) as http:
        api.start()
        await api.wait_ready("/readyz")
        yield LbaasClient(http)


async def _answered(
    client: LbaasClient, method: str, path: str, code: int, body: Any = None
) -> Any:
    response = await client.http.request(method, f"{API}/{path}", json=body)
    assert response.status_code == code, response.text
    assert response.headers["x-operation-id"]
    return response.json() if code != 204 else response


async def test_changes_answer_octavias_codes(octavia: LbaasClient) -> None:
    device = await octavia.create_device("noop")
    placed = {"provider": "noop", "device_id": device["id"]}
    lb = await _answered(octavia, "POST", "loadbalancers", 201, {"loadbalancer": placed})
    lb_id = lb["loadbalancer"]["id"]
    await octavia.wait_lb(lb_id, ("ACTIVE",))
    listener_body = {"loadbalancer_id": lb_id, "protocol": "HTTP", "protocol_port": 80}
    listener = await _answered(octavia, "POST", "listeners", 201, {"listener": listener_body})
    await octavia.wait_lb(lb_id, ("ACTIVE",))
    pool_body = {
        "listener_id": listener["listener"]["id"],
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
    }
    pool = await _answered(octavia, "POST", "pools", 201, {"pool": pool_body})
    pool_path = f"pools/{pool['pool']['id']}"
    await octavia.wait_lb(lb_id, ("ACTIVE",))

    updated = await _answered(octavia, "PUT", pool_path, 200, {"pool": {"name": "renamed"}})
    assert updated["pool"]["name"] == "renamed"
    await octavia.wait_lb(lb_id, ("ACTIVE",))
    members = {"members": [{"address": "127.0.0.31", "protocol_port": 80}]}
    await _answered(octavia, "PUT", f"{pool_path}/members", 202, members)
    await octavia.wait_lb(lb_id, ("ACTIVE",))
    deleted = await _answered(octavia, "DELETE", pool_path, 204)
    assert deleted.content == b""
    assert deleted.headers["etag"]
    await octavia.wait_lb(lb_id, ("ACTIVE",))
    await _answered(octavia, "PUT", f"loadbalancers/{lb_id}", 200, {"loadbalancer": {"name": "x"}})
    await octavia.wait_lb(lb_id, ("ACTIVE",))
    gone = await octavia.http.delete(f"{API}/loadbalancers/{lb_id}", params={"cascade": "true"})
    assert (gone.status_code, gone.content) == (204, b"")
    await octavia.wait_gone(lb_id)


async def test_the_document_says_octavias_codes(octavia: LbaasClient) -> None:
    document = (await octavia.http.get("/openapi.json")).json()
    paths = document["paths"]
    answers = {
        ("post", "/v2/lbaas/pools"): "201",
        ("put", "/v2/lbaas/pools/{pool_id}"): "200",
        ("delete", "/v2/lbaas/pools/{pool_id}"): "204",
        ("post", "/v2/lbaas/loadbalancers"): "201",
        ("delete", "/v2/lbaas/loadbalancers/{loadbalancer_id}"): "204",
        ("put", "/v2/lbaas/pools/{pool_id}/members"): "202",
    }
    for (method, path), code in answers.items():
        successes = [status for status in paths[path][method]["responses"] if status[0] == "2"]
        assert successes == [code], (method, path, successes)
    deleted = paths["/v2/lbaas/pools/{pool_id}"]["delete"]["responses"]["204"]
    assert not deleted.get("content")
    assert "Octavia" in document["info"]["description"]
