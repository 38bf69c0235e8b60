"""The token is checked before anything else is done with a request: before an
Idempotency-Key replays an answer, and before the body is read (security review,
issue 11, findings 3 and 7)."""

import uuid
from typing import Any

import httpx
import pytest

from tests.support.client import LbaasClient
from tests.support.stack import Api

LBS = "/v2/lbaas/loadbalancers"


async def _issue(admin: LbaasClient, name: str, project: str, role: str = "member") -> str:
    response = await admin.http.post(
        "/v2/lbaas/tokens", json={"token": {"name": name, "project_id": project, "role": role}}
    )
    assert response.status_code == 201, response.text
    secret: str = response.json()["token"]["token"]
    return secret


async def _revoke(admin: LbaasClient, name: str) -> None:
    listed = (await admin.http.get("/v2/lbaas/tokens")).json()["tokens"]
    token_id = next(t["id"] for t in listed if t["name"] == name)
    assert (await admin.http.delete(f"/v2/lbaas/tokens/{token_id}")).status_code == 200


def _assert_problem(response: httpx.Response, status: int, mentions: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "idempotent-replayed" not in response.headers
    assert mentions in response.json()["detail"], response.json()


@pytest.fixture
async def anonymous(api: Api) -> Any:
    """A client of the session's API that sends no header of its own."""
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        yield http


async def test_a_revoked_token_gets_no_replay(
    client: LbaasClient, anonymous: httpx.AsyncClient
) -> None:
    await client.create_device("noop")
    name = f"replayer-{uuid.uuid4().hex[:8]}"
    secret = await _issue(client, name, "proj-replay")
    request: dict[str, Any] = {
        "json": {"loadbalancer": {"name": "replayed", "provider": "noop"}},
        "headers": {"X-Auth-Token": secret, "Idempotency-Key": f"k-{name}"},
    }
    first = await anonymous.post(LBS, **request)
    assert first.status_code == 202, first.text
    replayed = await anonymous.post(LBS, **request)
    assert replayed.headers["idempotent-replayed"] == "true"

    await _revoke(client, name)
    refused = await anonymous.post(LBS, **request)
    _assert_problem(refused, 401, "revoked")
    assert refused.headers["www-authenticate"].startswith("Bearer")


async def test_more_than_one_credential_header_is_refused(
    client: LbaasClient, anonymous: httpx.AsyncClient
) -> None:
    await client.create_device("noop")
    name = f"doubled-{uuid.uuid4().hex[:8]}"
    secret = await _issue(client, name, "proj-doubled")
    key = ("Idempotency-Key", f"k-{name}")
    body = {"loadbalancer": {"name": "doubled", "provider": "noop"}}
    first = await anonymous.post(LBS, json=body, headers=[("X-Auth-Token", secret), key])
    assert first.status_code == 202, first.text

    for credentials in (
        [("X-Auth-Token", "not-a-token"), ("X-Auth-Token", secret)],
        [("X-Auth-Token", secret), ("X-Auth-Token", secret)],
        [("X-Auth-Token", secret), ("Authorization", "Bearer not-a-token")],
        [("Authorization", "Bearer not-a-token"), ("Authorization", f"Bearer {secret}")],
    ):
        refused = await anonymous.post(LBS, json=body, headers=[*credentials, key])
        _assert_problem(refused, 400, "one credential")
        assert secret not in refused.text
        listed = await anonymous.get(LBS, headers=credentials)
        _assert_problem(listed, 400, "one credential")
    # A header that carries nothing is no credential (schemathesis sends an empty Bearer).
    for blank in (("Authorization", "Bearer"), ("Authorization", ""), ("X-Auth-Token", "")):
        listed = await anonymous.get(LBS, headers=[("X-Auth-Token", secret), blank])
        assert listed.status_code == 200, (blank, listed.text)


async def test_a_key_replays_only_to_the_token_that_stored_the_answer(
    client: LbaasClient, anonymous: httpx.AsyncClient
) -> None:
    await client.create_device("noop")
    suffix = uuid.uuid4().hex[:8]
    first_token = await _issue(client, f"first-{suffix}", "proj-owner")
    second_token = await _issue(client, f"second-{suffix}", "proj-owner")
    body = {"loadbalancer": {"name": "owned", "provider": "noop"}}
    key = f"k-owned-{suffix}"
    created = [
        await anonymous.post(LBS, json=body, headers={"X-Auth-Token": t, "Idempotency-Key": key})
        for t in (first_token, second_token)
    ]
    assert [r.status_code for r in created] == [202, 202], [r.text for r in created]
    assert "idempotent-replayed" not in created[1].headers
    ids = {r.json()["loadbalancer"]["id"] for r in created}
    assert len(ids) == 2


async def test_the_token_is_checked_before_the_body_is_read(
    client: LbaasClient, anonymous: httpx.AsyncClient
) -> None:
    bad = {"X-Auth-Token": "x" * 43, "content-type": "application/json"}
    for body in (
        b'{"loadbalancer": {"name": "' + b"x" * (1024 * 1024 + 10) + b'"}}',
        b'{"loadbalancer": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    ):
        refused = await anonymous.post(LBS, content=body, headers=bad)
        _assert_problem(refused, 401, "not valid")
    # With a valid token the body is read and checked as before.
    admitted = {**bad, "X-Auth-Token": client.http.headers["x-auth-token"]}
    deep = b'{"loadbalancer": ' + b"[" * 100 + b"]" * 100 + b"}"
    _assert_problem(await anonymous.post(LBS, content=deep, headers=admitted), 400, "nested")
