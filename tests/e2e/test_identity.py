"""Keystone v3 for this service alone: its tokens are application credentials, exchanged at
``POST /identity/v3/auth/tokens`` for short-lived Keystone tokens that work on every
authenticated path; and openstacksdk works with nothing but a standard ``clouds.yaml``."""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import keystoneauth1.exceptions
import openstack
import openstack.exceptions
import pytest
import yaml

from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Api, Isolation, eventually, running

TOKENS = "/identity/v3/auth/tokens"
LBS = "/v2/lbaas/loadbalancers"
PUBLIC_URL = "https://lb.example.test/cloud"
REGION = "Moon-1"
SHORT_TTL = 2
FAILURE_BURST = 3
TYPES = {"load-balancer", "network", "identity"}
WAIT = {"interval": 0.2, "wait": 60}


async def _token(
    client: LbaasClient, project: str, role: str = "member", **extra: Any
) -> dict[str, Any]:
    """A new token of this service (an application credential), with its secret."""
    body = {"name": f"cred-{uuid.uuid4().hex[:8]}", "project_id": project, "role": role, **extra}
    response = await client.http.post("/v2/lbaas/tokens", json={"token": body})
    assert response.status_code == 201, response.text
    token: dict[str, Any] = response.json()["token"]
    return token


def _by_id(token: dict[str, Any], secret: str | None = None) -> dict[str, Any]:
    credential = {"id": token["id"], "secret": secret or token["token"]}
    return {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": credential,
            }
        }
    }


async def _exchange(url: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        return await http.post(TOKENS, json=body, headers=headers)


async def _keystone_token(url: str, token: dict[str, Any]) -> str:
    response = await _exchange(url, _by_id(token))
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def _project() -> str:
    return f"p-{uuid.uuid4().hex[:10]}"


def _moment(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def _assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status and problem["detail"], problem
    return problem


@pytest.fixture(scope="module")
async def configured(isolation: Isolation, log_dir: Path) -> AsyncIterator[Api]:
    """An API of the session's stack with a public URL, a region, Keystone tokens of two
    seconds and few failed authentications allowed per address."""
    api = Api(
        isolation.api_env(
            public_url=PUBLIC_URL,
            identity_region=REGION,
            identity_token_ttl=SHORT_TTL,
            auth_failure_rate=0.01,
            auth_failure_burst=FAILURE_BURST,
        ),
        log_dir,
    )
    async with running(api):
        api.start()
        await api.wait_ready("/readyz")
        yield api


async def test_an_application_credential_gives_a_keystone_token(
    api: Api, client: LbaasClient
) -> None:
    project = _project()
    credential = await _token(client, project)
    before = datetime.now(UTC).replace(microsecond=0)
    response = await _exchange(api.url, _by_id(credential))
    assert response.status_code == 201, response.text
    subject = response.headers["X-Subject-Token"]
    assert subject != credential["token"]
    token = response.json()["token"]
    assert token["methods"] == ["application_credential"]
    assert token["project"]["id"] == token["project"]["name"] == project
    assert token["user"]["id"] == project
    assert [role["name"] for role in token["roles"]] == ["member"]
    assert token["application_credential"]["id"] == credential["id"]
    assert credential["token"] not in response.text
    expires = _moment(token["expires_at"])
    assert 3590 <= (expires - before).total_seconds() <= 3610
    catalog = {service["type"]: service for service in token["catalog"]}
    assert set(catalog) == TYPES
    for kind, service in catalog.items():
        url = api.url + ("/identity" if kind == "identity" else "")
        assert {(e["interface"], e["url"], e["region_id"]) for e in service["endpoints"]} == {
            (interface, url, "RegionOne") for interface in ("public", "internal", "admin")
        }
    async with authenticated(api.url, subject, timeout=10) as http:
        for prefix in ("/v2", "/v2.0"):
            listed = await http.get(f"{prefix}/lbaas/loadbalancers")
            assert listed.status_code == 200, listed.text
            assert listed.json()["loadbalancers"] == []
        for path in ("/v2.0/networks", "/v2/subnets"):
            assert (await http.get(path)).status_code == 200, path
        # The credential's role holds: a member may not list tokens.
        _assert_problem(await http.get("/v2/lbaas/tokens"), 403)
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        bare = await http.post(f"{TOKENS}?nocatalog", json=_by_id(credential))
    assert bare.status_code == 201 and bare.json()["token"]["catalog"] == []


async def test_a_credential_by_name_and_user(api: Api, client: LbaasClient) -> None:
    project = _project()
    credential = await _token(client, project, role="observer")
    by_name = {
        "name": credential["name"],
        "secret": credential["token"],
        "user": {"name": project, "domain": {"name": "Default"}},
    }
    body = {
        "auth": {
            "identity": {"methods": ["application_credential"], "application_credential": by_name}
        }
    }
    response = await _exchange(api.url, body)
    assert response.status_code == 201, response.text
    assert response.json()["token"]["application_credential"]["id"] == credential["id"]
    for user in ({"id": _project()}, {"name": project, "domain": {"id": "elsewhere"}}):
        body["auth"]["identity"]["application_credential"] = {**by_name, "user": user}
        _assert_problem(await _exchange(api.url, body), 401)
    body["auth"]["identity"]["application_credential"] = {**by_name, "user": None}
    _assert_problem(await _exchange(api.url, body), 400)
    scoped = {**_by_id(credential)["auth"], "scope": {"project": {"id": project}}}
    assert (await _exchange(api.url, {"auth": scoped})).status_code == 201
    elsewhere = {**scoped, "scope": {"project": {"name": _project()}}}
    _assert_problem(await _exchange(api.url, {"auth": elsewhere}), 401)


async def test_a_wrong_secret_is_refused_and_counted(configured: Api, client: LbaasClient) -> None:
    credential = await _token(client, _project())
    address = {"X-Forwarded-For": "192.0.2.50"}
    wrong = "w" * 43
    for body in (_by_id(credential, wrong), _by_id({**credential, "id": str(uuid.uuid4())})):
        problem = _assert_problem(await _exchange(configured.url, body, **address), 401)
        assert "application credential" in problem["detail"]
        assert wrong not in str(problem) and credential["token"] not in str(problem)
    # Unknown methods and malformed bodies are 400 and change nothing.
    password = {"auth": {"identity": {"methods": ["password"], "password": {}}}}
    _assert_problem(await _exchange(configured.url, password, **address), 400)
    async with httpx.AsyncClient(base_url=configured.url, timeout=10) as http:
        huge = await http.post(TOKENS, content=b"{" + b" " * (2 << 20) + b"}", headers=address)
    _assert_problem(huge, 413)
    # A failed authentication here counts as one with a bad X-Auth-Token.
    async with httpx.AsyncClient(base_url=configured.url, timeout=10) as http:
        bad = await http.get(LBS, headers={"X-Auth-Token": wrong, **address})
    _assert_problem(bad, 401)
    limited = _assert_problem(await _exchange(configured.url, _by_id(credential), **address), 429)
    assert "failed authentications" in limited["detail"]
    assert (await _exchange(configured.url, _by_id(credential))).status_code == 201


async def test_a_keystone_token_expires(configured: Api, client: LbaasClient) -> None:
    credential = await _token(client, _project())
    response = await _exchange(configured.url, _by_id(credential))
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    lifetime = _moment(token["expires_at"]) - _moment(token["issued_at"])
    assert lifetime.total_seconds() == SHORT_TTL
    subject = response.headers["X-Subject-Token"]
    # Its own client address: the 401 counts as a failed authentication.
    headers = {"X-Auth-Token": subject, "X-Forwarded-For": "192.0.2.51"}
    async with httpx.AsyncClient(base_url=configured.url, headers=headers, timeout=10) as http:
        assert (await http.get(LBS)).status_code == 200

        async def refused() -> dict[str, Any] | None:
            answer = await http.get(LBS)
            return _assert_problem(answer, 401) if answer.status_code != 200 else None

        problem = await eventually(refused, timeout=SHORT_TTL + 5, interval=0.2, what="expiry")
    assert "expired" in problem["detail"]


async def test_a_keystone_token_ends_with_its_credential(api: Api, client: LbaasClient) -> None:
    credential = await _token(client, _project(), expires_in=60)
    response = await _exchange(api.url, _by_id(credential))
    assert response.status_code == 201, response.text
    expires = _moment(response.json()["token"]["expires_at"])
    assert (expires - datetime.now(UTC)).total_seconds() <= 60
    subject = response.headers["X-Subject-Token"]
    async with authenticated(api.url, subject, timeout=10) as http:
        assert (await http.get(LBS)).status_code == 200
        revoked = await client.http.delete(f"/v2/lbaas/tokens/{credential['id']}")
        assert revoked.status_code == 200, revoked.text
        assert "revoked" in _assert_problem(await http.get(LBS), 401)["detail"]
    assert "revoked" in _assert_problem(await _exchange(api.url, _by_id(credential)), 401)["detail"]


async def test_the_catalog_and_versions_are_at_the_public_url(
    configured: Api, client: LbaasClient
) -> None:
    forged = {"Host": "evil.example", "X-Forwarded-Host": "evil.example"}
    credential = await _token(client, _project())
    response = await _exchange(configured.url, _by_id(credential), **forged)
    assert response.status_code == 201, response.text
    urls = set()
    for service in response.json()["token"]["catalog"]:
        for endpoint in service["endpoints"]:
            assert endpoint["region"] == endpoint["region_id"] == REGION
            urls.add(endpoint["url"])
    assert urls == {PUBLIC_URL, f"{PUBLIC_URL}/identity"}
    async with httpx.AsyncClient(base_url=configured.url, timeout=10, headers=forged) as http:
        versions = await http.get("/identity")
        assert versions.status_code == 300, versions.text
        (version,) = versions.json()["versions"]["values"]
        shown = (await http.get("/identity/v3")).json()["version"]
    assert version == shown
    assert version["id"].startswith("v3.") and version["status"] == "stable"
    assert version["links"] == [{"href": f"{PUBLIC_URL}/identity/v3/", "rel": "self"}]


async def test_validating_a_token(api: Api, client: LbaasClient) -> None:
    project = _project()
    subject = await _keystone_token(api.url, await _token(client, project))
    stranger = await _keystone_token(api.url, await _token(client, _project()))
    for caller in (subject, client.http.headers["X-Auth-Token"]):
        async with authenticated(api.url, caller, timeout=10) as http:
            valid = await http.get(TOKENS, headers={"X-Subject-Token": subject})
        assert valid.status_code == 200, valid.text
        assert valid.headers["X-Subject-Token"] == subject
        assert valid.json()["token"]["project"]["id"] == project
    async with authenticated(api.url, stranger, timeout=10) as http:
        _assert_problem(await http.get(TOKENS, headers={"X-Subject-Token": subject}), 404)
        _assert_problem(await http.get(TOKENS, headers={"X-Subject-Token": "x" * 140}), 404)
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        _assert_problem(await http.get(TOKENS, headers={"X-Subject-Token": subject}), 401)


async def test_projects_are_visible_as_the_objects_are(api: Api, client: LbaasClient) -> None:
    mine, other = _project(), _project()
    member = await _keystone_token(api.url, await _token(client, mine))
    await _token(client, other, role="observer")
    async with authenticated(api.url, member, timeout=10) as http:
        listed = (await http.get("/identity/v3/projects")).json()["projects"]
        assert [p["id"] for p in listed] == [mine] and listed[0]["name"] == mine
        named = await http.get("/identity/v3/projects", params={"name": other})
        assert named.json()["projects"] == []
        assert (await http.get(f"/identity/v3/projects/{mine}")).json()["project"]["id"] == mine
        _assert_problem(await http.get(f"/identity/v3/projects/{other}"), 404)
        assert (await http.get(f"/identity/v3/users/{mine}")).json()["user"]["name"] == mine
        _assert_problem(await http.get(f"/identity/v3/users/{other}"), 404)
        own = (await http.get("/identity/v3/auth/projects")).json()["projects"]
        assert [p["id"] for p in own] == [mine]
    everyone = {
        p["id"] for p in (await client.http.get("/identity/v3/projects")).json()["projects"]
    }
    assert {mine, other, "admin"} <= everyone
    named = await client.http.get("/identity/v3/projects", params={"name": other})
    assert [p["id"] for p in named.json()["projects"]] == [other]
    assert (await client.http.get(f"/identity/v3/projects/{other}")).status_code == 200
    _assert_problem(await client.http.get(f"/identity/v3/projects/{_project()}"), 404)


@pytest.fixture
def clouds_yaml(tmp_path: Path) -> Iterator[Path]:
    """Where the test writes its clouds.yaml: ``OS_CLIENT_CONFIG_FILE`` for the test's run."""
    path = tmp_path / "clouds.yaml"
    previous = os.environ.get("OS_CLIENT_CONFIG_FILE")
    os.environ["OS_CLIENT_CONFIG_FILE"] = str(path)
    yield path
    if previous is None:
        del os.environ["OS_CLIENT_CONFIG_FILE"]
    else:
        os.environ["OS_CLIENT_CONFIG_FILE"] = previous


def _sdk_flow(cloud: str) -> dict[str, Any]:
    conn = openstack.connect(cloud=cloud)
    lb_api: Any = conn.load_balancer
    lb = lb_api.create_load_balancer(name="ks-web", provider="noop")
    lb = lb_api.wait_for_load_balancer(lb.id, **WAIT)
    listed = [x.id for x in lb_api.load_balancers()]
    return {"lb": lb.id, "project": lb.project_id, "listed": listed, "me": conn.current_project_id}


def _sdk_refused(cloud: str) -> str:
    conn = openstack.connect(cloud=cloud)
    try:
        list(conn.load_balancer.load_balancers())
    except (openstack.exceptions.SDKException, keystoneauth1.exceptions.ClientException) as exc:
        return type(exc).__name__
    raise AssertionError("a revoked credential still lists load balancers")


async def test_openstacksdk_with_only_a_clouds_yaml(
    api: Api, client: LbaasClient, clouds_yaml: Path
) -> None:
    await client.create_device("noop")
    project = _project()
    credential = await _token(client, project)
    others = await client.http.post(
        LBS,
        json={"loadbalancer": {"name": "not-mine", "provider": "noop", "project_id": _project()}},
    )
    assert others.status_code == 202, others.text
    clouds = {
        "clouds": {
            "lbaas": {
                "auth_type": "v3applicationcredential",
                "auth": {
                    "auth_url": f"{api.url}/identity/v3",
                    "application_credential_id": credential["id"],
                    "application_credential_secret": credential["token"],
                },
                "region_name": "RegionOne",
            }
        }
    }
    await asyncio.to_thread(clouds_yaml.write_text, yaml.safe_dump(clouds))
    outcome = await asyncio.to_thread(_sdk_flow, "lbaas")
    assert outcome["project"] == outcome["me"] == project
    assert outcome["listed"] == [outcome["lb"]]
    revoked = await client.http.delete(f"/v2/lbaas/tokens/{credential['id']}")
    assert revoked.status_code == 200, revoked.text
    refused = await asyncio.to_thread(_sdk_refused, "lbaas")
    assert refused in ("Unauthorized", "HttpException"), refused


async def test_which_paths_need_a_token(api: Api) -> None:
    async with httpx.AsyncClient(base_url=api.url, timeout=10) as http:
        for path in ("/identity", "/identity/", "/identity/v3", "/identity/v3/"):
            assert (await http.get(path)).status_code in (200, 300), path
        for path in (
            "/identity/v3/projects",
            "/identity/v3/auth/projects",
            "/identity/v3/users/admin",
            "/v2.0/networks",
            "/v2/subnets",
            "/v2.0/ports",
        ):
            _assert_problem(await http.get(path), 401)
