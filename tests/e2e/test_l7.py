"""L7 policies and rules through the API, carrying real traffic through HAProxy.

One load balancer: an HTTP listener whose default pool is b0, and two more
pools, b1 and b2. Each test adds policies and checks where requests go.
"""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.client import LbaasClient
from tests.support.haproxy import PORT, Backend, member_body

pytestmark = pytest.mark.slow

API = "/v2/lbaas"


@pytest.fixture
async def web(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend]
) -> AsyncIterator[dict[str, Any]]:
    """The load balancer, with its listener's and pools' ids; deleted afterwards."""

    def pool(backend: Backend, name: str) -> dict[str, Any]:
        return {
            "name": name,
            "protocol": "HTTP",
            "lb_algorithm": "ROUND_ROBIN",
            "members": [member_body(backend)],
        }

    listener = {"protocol": "HTTP", "protocol_port": PORT, "default_pool": pool(backends[0], "b0")}
    response = await client.create_lb(
        registered, listeners=[listener], pools=[pool(backends[1], "b1"), pool(backends[2], "b2")]
    )
    assert response.status_code == 202, response.text
    lb = await client.wait_lb(response.json()["loadbalancer"]["id"], ("ACTIVE",))
    pools = (await client.http.get(f"{API}/pools", params={"loadbalancer_id": lb["id"]})).json()
    yield {
        "lb": lb,
        "listener_id": lb["listeners"][0]["id"],
        "pool": {p["name"]: p["id"] for p in pools["pools"]},
        "url": f"http://{lb['vip_address']}:{PORT}",
    }
    await client.http.delete(f"{API}/loadbalancers/{lb['id']}?cascade=true")
    await client.wait_gone(lb["id"])


async def policy(
    client: LbaasClient, web: dict[str, Any], rules: list[dict[str, Any]], **fields: Any
) -> dict[str, Any]:
    body = {"listener_id": web["listener_id"], "rules": rules, **fields}
    response = await client.http.post(f"{API}/l7policies", json={"l7policy": body})
    assert response.status_code == 202, response.text
    await client.wait_lb(web["lb"]["id"], ("ACTIVE",))
    shown: dict[str, Any] = response.json()["l7policy"]
    return shown


def rule(type_: str, compare: str, value: str, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "compare_type": compare, "value": value, **fields}


async def get(web: dict[str, Any], path: str = "/", **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=5, follow_redirects=False) as http:
        return await http.get(web["url"] + path, headers=headers)


async def test_host_path_header_and_cookie_rules_route_to_their_pools(
    client: LbaasClient, web: dict[str, Any]
) -> None:
    to_b1 = {"action": "REDIRECT_TO_POOL", "redirect_pool_id": web["pool"]["b1"]}
    to_b2 = {"action": "REDIRECT_TO_POOL", "redirect_pool_id": web["pool"]["b2"]}
    await policy(client, web, [rule("HOST_NAME", "EQUAL_TO", "api.example")], **to_b1)
    await policy(client, web, [rule("PATH", "STARTS_WITH", "/static")], **to_b2)
    await policy(client, web, [rule("HEADER", "EQUAL_TO", "yes", key="X-Canary")], **to_b1)
    await policy(client, web, [rule("COOKIE", "EQUAL_TO", "1", key="beta")], **to_b2)

    assert (await get(web, "/", Host="api.example")).text == "b1"
    assert (await get(web, "/", Host="API.example:8080")).text == "b1"
    assert (await get(web, "/static/app.js")).text == "b2"
    assert (await get(web, "/dynamic")).text == "b0"
    assert (await get(web, "/", **{"X-Canary": "yes"})).text == "b1"
    assert (await get(web, "/", **{"X-Canary": "no"})).text == "b0"
    assert (await get(web, "/", Cookie="theme=dark; beta=1")).text == "b2"
    assert (await get(web, "/", Cookie="beta=0")).text == "b0"


async def test_reject_and_redirects_answer_with_their_codes(
    client: LbaasClient, web: dict[str, Any]
) -> None:
    await policy(client, web, [rule("PATH", "STARTS_WITH", "/admin")], action="REJECT")
    await policy(
        client,
        web,
        [rule("PATH", "EQUAL_TO", "/old")],
        action="REDIRECT_TO_URL",
        redirect_url="https://new.example/landing",
        redirect_http_code=301,
    )
    prefix = await policy(
        client,
        web,
        [rule("HOST_NAME", "ENDS_WITH", ".legacy.example")],
        action="REDIRECT_PREFIX",
        redirect_prefix="https://modern.example",
        redirect_http_code=308,
    )
    assert prefix["redirect_http_code"] == 308 and prefix["position"] == 3

    assert (await get(web, "/admin/users")).status_code == 403
    moved = await get(web, "/old")
    assert (moved.status_code, moved.headers["location"]) == (301, "https://new.example/landing")
    kept = await get(web, "/a/b?c=1", Host="www.legacy.example")
    assert kept.status_code == 308
    assert kept.headers["location"] == "https://modern.example/a/b?c=1"
    assert (await get(web, "/elsewhere")).text == "b0"


async def test_invert_and_regex_rules(client: LbaasClient, web: dict[str, Any]) -> None:
    await policy(
        client,
        web,
        [rule("HEADER", "EQUAL_TO", "prod", key="X-Env", invert=True)],
        action="REDIRECT_TO_POOL",
        redirect_pool_id=web["pool"]["b2"],
    )
    assert (await get(web, "/")).text == "b2"
    assert (await get(web, "/", **{"X-Env": "prod"})).text == "b0"

    await policy(
        client,
        web,
        [rule("PATH", "REGEX", r"^/v[0-9]+/(users|teams)$")],
        action="REJECT",
        position=1,
    )
    assert (await get(web, "/v2/teams", **{"X-Env": "prod"})).status_code == 403
    assert (await get(web, "/v2/projects", **{"X-Env": "prod"})).text == "b0"


async def test_the_first_matching_policy_by_position_wins_and_moving_it_takes_effect(
    client: LbaasClient, web: dict[str, Any]
) -> None:
    reject = await policy(client, web, [rule("PATH", "STARTS_WITH", "/both")], action="REJECT")
    route = await policy(
        client,
        web,
        [rule("PATH", "STARTS_WITH", "/both")],
        action="REDIRECT_TO_POOL",
        redirect_pool_id=web["pool"]["b1"],
    )
    assert (reject["position"], route["position"]) == (1, 2)
    assert (await get(web, "/both")).status_code == 403

    response = await client.http.put(
        f"{API}/l7policies/{route['id']}", json={"l7policy": {"position": 1}}
    )
    assert response.status_code == 202, response.text
    await client.wait_lb(web["lb"]["id"], ("ACTIVE",))
    assert (await get(web, "/both")).text == "b1"
    positions = {
        p["id"]: p["position"]
        for p in (
            await client.http.get(f"{API}/l7policies", params={"listener_id": web["listener_id"]})
        ).json()["l7policies"]
    }
    assert positions == {route["id"]: 1, reject["id"]: 2}

    response = await client.http.delete(f"{API}/l7policies/{route['id']}")
    assert response.status_code == 202, response.text
    await client.wait_lb(web["lb"]["id"], ("ACTIVE",))
    assert (await get(web, "/both")).status_code == 403
    shown = (await client.http.get(f"{API}/l7policies/{reject['id']}")).json()["l7policy"]
    assert shown["position"] == 1


@pytest.mark.parametrize(
    "changes",
    [
        {"value": "a\nb"},
        {"value": "a\rb"},
        {"value": "a\x00b"},
        {"value": "/a #b"},
        {"value": "/'quoted'"},
        {"value": '/"quoted"'},
        {"value": "/${LBAAS_DEVICE_SECRET}"},
        {"value": "/%[env(HOME)]"},
        {"value": "/a\\b"},
        {"value": "/" + "a" * 300},
        {"value": "/é"},
        {"type": "HEADER", "key": "X a"},
        {"type": "HEADER", "key": "X-A\nlisten pwned"},
        {"type": "HEADER", "key": "${X}"},
        {"type": "HEADER", "key": None},
        {"type": "COOKIE", "key": "a;b"},
        {"compare_type": "REGEX", "value": "(unclosed"},
        {"compare_type": "REGEX", "value": "a'b"},
    ],
)
async def test_injection_attempts_in_rules_are_refused(
    client: LbaasClient, web: dict[str, Any], changes: dict[str, Any]
) -> None:
    base = await policy(client, web, [], action="REJECT")
    body = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/ok", **changes}
    response = await client.http.post(f"{API}/l7policies/{base['id']}/rules", json={"rule": body})
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    rules = (await client.http.get(f"{API}/l7policies/{base['id']}/rules")).json()["rules"]
    assert rules == []


async def test_policies_and_rules_nest_in_the_tree_create_and_the_status_tree(
    client: LbaasClient, registered: dict[str, Any], backends: list[Backend]
) -> None:
    listener = {
        "protocol": "HTTP",
        "protocol_port": PORT,
        "default_pool": {
            "protocol": "HTTP",
            "lb_algorithm": "ROUND_ROBIN",
            "members": [member_body(backends[0])],
        },
        "l7policies": [
            {
                "action": "REDIRECT_TO_POOL",
                "redirect_pool": {
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [member_body(backends[1])],
                },
                "rules": [rule("PATH", "STARTS_WITH", "/api")],
            },
            {"action": "REJECT", "rules": [rule("PATH", "STARTS_WITH", "/private")]},
        ],
    }
    response = await client.create_lb(registered, listeners=[listener])
    assert response.status_code == 202, response.text
    lb = await client.wait_lb(response.json()["loadbalancer"]["id"], ("ACTIVE",))
    url = f"http://{lb['vip_address']}:{PORT}"
    async with httpx.AsyncClient(timeout=5) as http:
        assert (await http.get(f"{url}/api/x")).text == "b1"
        assert (await http.get(f"{url}/private")).status_code == 403
        assert (await http.get(f"{url}/")).text == "b0"
    tree = (await client.http.get(f"{API}/loadbalancers/{lb['id']}/status")).json()
    policies = tree["statuses"]["loadbalancer"]["listeners"][0]["l7policies"]
    assert [p["action"] for p in policies] == ["REDIRECT_TO_POOL", "REJECT"]
    assert all(p["provisioning_status"] == "ACTIVE" for p in policies)
    assert [r["type"] for p in policies for r in p["rules"]] == ["PATH", "PATH"]

    response = await client.http.delete(f"{API}/loadbalancers/{lb['id']}?cascade=true")
    assert response.status_code == 202, response.text
    await client.wait_gone(lb["id"])
    assert (await client.http.get(f"{API}/l7policies/{policies[0]['id']}")).status_code == 404
