"""No spelling of a path reaches a route it does not name, and the answer of issuing a
token is never stored for an Idempotency-Key, whatever the path looks like (security
review, issue 11, finding 4)."""

import uuid

import httpx
import pytest

from tests.support.client import LbaasClient
from tests.support.stack import Isolation

CONTROLS = ["%0A", "%0D", "%00", "%09", "%1B", "%7F", "%C2%85"]
"""A newline (which Starlette's ``$`` lets through), other C0 controls, DEL and a C1 one."""


def _assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "control character" in response.json()["detail"]


@pytest.mark.parametrize("control", CONTROLS)
async def test_a_path_with_a_control_character_is_404(client: LbaasClient, control: str) -> None:
    for path in (
        f"/v2/lbaas/loadbalancers{control}",
        f"/v2.0/lbaas/loadbalancers{control}",
        f"/v2/lbaas/load{control}balancers",
        f"/healthz{control}",
    ):
        _assert_not_found(await client.http.get(path))
    async with httpx.AsyncClient(base_url=str(client.http.base_url)) as anonymous:
        _assert_not_found(await anonymous.get(f"/v2/lbaas/loadbalancers{control}"))


async def _stored(isolation: Isolation, key: str) -> int:
    rows = await isolation.fetch("SELECT count(*) AS n FROM idempotency_keys WHERE key = $1", key)
    count: int = rows[0]["n"]
    return count


async def test_a_token_create_with_a_trailing_newline_is_404_and_stores_nothing(
    client: LbaasClient, isolation: Isolation
) -> None:
    name = f"newline-{uuid.uuid4().hex[:8]}"
    key = f"k-{name}"
    response = await client.http.post(
        "/v2/lbaas/tokens%0A",
        json={"token": {"name": name, "project_id": "proj-nl", "role": "admin"}},
        headers={"Idempotency-Key": key},
    )
    _assert_not_found(response)
    assert await _stored(isolation, key) == 0
    assert await isolation.fetch("SELECT id FROM tokens WHERE name = $1", name) == []


@pytest.mark.parametrize("path", ["/v2/lbaas/tokens", "/v2.0/lbaas/tokens", "/v2/lbaas/%74okens"])
async def test_an_issued_token_is_never_stored_for_an_idempotency_key(
    client: LbaasClient, isolation: Isolation, path: str
) -> None:
    key = f"k-{uuid.uuid4().hex}"
    body = {"token": {"name": "keyed", "project_id": "proj-keyed", "role": "observer"}}
    issued = [
        await client.http.post(path, json=body, headers={"Idempotency-Key": key}) for _ in range(2)
    ]
    assert [r.status_code for r in issued] == [201, 201], [r.text for r in issued]
    secrets = [r.json()["token"]["token"] for r in issued]
    assert secrets[0] != secrets[1]
    assert "idempotent-replayed" not in issued[1].headers
    assert await _stored(isolation, key) == 0
    for secret in secrets:
        holding = await isolation.fetch(
            "SELECT key FROM idempotency_keys WHERE strpos(body, $1) > 0", secret
        )
        assert holding == []
