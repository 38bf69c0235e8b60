"""L7 policies and rules as the API keeps them: positions, cascades, quotas, visibility."""

from typing import Any

from tests.support.client import LbaasClient

API = "/v2/lbaas"


async def _web(client: LbaasClient, **body: Any) -> dict[str, Any]:
    device = await client.create_device("noop")
    listener = {
        "protocol": "HTTP",
        "protocol_port": 80,
        "default_pool": {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"},
    }
    response = await client.create_lb(device, listeners=[listener], **body)
    assert response.status_code == 202, response.text
    return await client.wait_lb(response.json()["loadbalancer"]["id"], ("ACTIVE",))


async def _policy(client: LbaasClient, lb: dict[str, Any], **fields: Any) -> dict[str, Any]:
    body = {"listener_id": lb["listeners"][0]["id"], "action": "REJECT", **fields}
    response = await client.http.post(f"{API}/l7policies", json={"l7policy": body})
    assert response.status_code == 202, response.text
    await client.wait_lb(lb["id"], ("ACTIVE",))
    policy: dict[str, Any] = response.json()["l7policy"]
    return policy


async def _positions(client: LbaasClient, lb: dict[str, Any]) -> list[str]:
    listed = await client.http.get(
        f"{API}/l7policies", params={"listener_id": lb["listeners"][0]["id"], "sort": "position"}
    )
    return [p["name"] for p in listed.json()["l7policies"]]


async def test_insertion_renumbers_and_a_position_past_the_end_is_the_end(
    client: LbaasClient,
) -> None:
    lb = await _web(client)
    await _policy(client, lb, name="a")
    await _policy(client, lb, name="b")
    await _policy(client, lb, name="first", position=1)
    far = await _policy(client, lb, name="last", position=99)
    assert far["position"] == 4
    assert await _positions(client, lb) == ["first", "a", "b", "last"]


async def test_a_redirect_pool_of_another_load_balancer_or_project_is_not_found(
    client: LbaasClient, client_factory: Any
) -> None:
    lb, other = await _web(client), await _web(client)
    other_pool = other["pools"][0]["id"] if other["pools"] else None
    assert other_pool is not None
    body = {
        "listener_id": lb["listeners"][0]["id"],
        "action": "REDIRECT_TO_POOL",
        "redirect_pool_id": other_pool,
    }
    response = await client.http.post(f"{API}/l7policies", json={"l7policy": body})
    assert response.status_code == 404, response.text
    assert other_pool in response.json()["detail"]
    missing = {**body, "redirect_pool_id": None}
    assert (
        await client.http.post(f"{API}/l7policies", json={"l7policy": missing})
    ).status_code == 400


async def test_a_redirect_pool_cannot_go_while_redirected_to_and_a_listener_takes_its_policies(
    client: LbaasClient,
) -> None:
    lb = await _web(client)
    pool_id = lb["pools"][0]["id"]
    policy = await _policy(client, lb, action="REDIRECT_TO_POOL", redirect_pool_id=pool_id)
    rule = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a"}
    created = await client.http.post(f"{API}/l7policies/{policy['id']}/rules", json={"rule": rule})
    assert created.status_code == 202, created.text
    await client.wait_lb(lb["id"], ("ACTIVE",))
    refused = await client.http.delete(f"{API}/pools/{pool_id}")
    assert refused.status_code == 409
    assert policy["id"] in refused.json()["detail"]

    gone = await client.http.delete(f"{API}/listeners/{lb['listeners'][0]['id']}")
    assert gone.status_code == 202, gone.text
    await client.wait_lb(lb["id"], ("ACTIVE",))
    assert (await client.http.get(f"{API}/l7policies/{policy['id']}")).status_code == 404
    rules = await client.http.get(f"{API}/l7policies/{policy['id']}/rules")
    assert rules.status_code == 404


async def test_l7_quotas_count_policies_and_rules(client: LbaasClient, client_factory: Any) -> None:
    token = await client.http.post(
        f"{API}/tokens", json={"token": {"name": "q", "project_id": "proj-l7q", "role": "member"}}
    )
    limits = {"l7policy": 1, "l7rule": 1}
    assert (await client.http.put(f"{API}/quotas/proj-l7q", json={"quota": limits})).is_success
    member = client_factory(token.json()["token"]["token"])
    await client.create_device("noop")
    body = {"provider": "noop", "listeners": [{"protocol": "HTTP", "protocol_port": 80}]}
    created = await member.http.post(f"{API}/loadbalancers", json={"loadbalancer": body})
    assert created.status_code == 202, created.text
    lb = await member.wait_lb(created.json()["loadbalancer"]["id"], ("ACTIVE",))
    listener_id = lb["listeners"][0]["id"]
    rule = {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/a"}

    two_rules = {"listener_id": listener_id, "action": "REJECT", "rules": [rule, rule]}
    refused = await member.http.post(f"{API}/l7policies", json={"l7policy": two_rules})
    assert refused.status_code == 403, refused.text
    assert "l7rule" in refused.json()["detail"]
    await _policy(member, lb, rules=[rule])
    second = await member.http.post(
        f"{API}/l7policies", json={"l7policy": {"listener_id": listener_id, "action": "REJECT"}}
    )
    assert second.status_code == 403
    assert "l7policy" in second.json()["detail"]
    shown = (await member.http.get(f"{API}/quotas/proj-l7q")).json()["quota"]
    assert (shown["l7policy"], shown["l7rule"]) == (1, 1)


async def test_policies_apply_to_http_listeners_only(client: LbaasClient) -> None:
    device = await client.create_device("noop")
    listener = {"protocol": "TCP", "protocol_port": 5000}
    lb = await client.wait_lb(
        (await client.create_lb(device, listeners=[listener])).json()["loadbalancer"]["id"]
    )
    body = {"listener_id": lb["listeners"][0]["id"], "action": "REJECT"}
    refused = await client.http.post(f"{API}/l7policies", json={"l7policy": body})
    assert refused.status_code == 400
    assert "HTTP listeners" in refused.json()["detail"]


async def test_an_update_that_sends_a_redirect_field_takes_its_action(
    client: LbaasClient,
) -> None:
    lb = await _web(client)
    pool_id = lb["pools"][0]["id"]
    policy = await _policy(client, lb)
    path = f"{API}/l7policies/{policy['id']}"

    async def put(change: dict[str, Any]) -> dict[str, Any]:
        response = await client.http.put(path, json={"l7policy": change})
        assert response.status_code == 202, response.text
        await client.wait_lb(lb["id"], ("ACTIVE",))
        shown: dict[str, Any] = (await client.http.get(path)).json()["l7policy"]
        return shown

    routed = await put({"redirect_pool_id": pool_id})
    assert (routed["action"], routed["redirect_pool_id"]) == ("REDIRECT_TO_POOL", pool_id)
    moved = await put({"redirect_url": "https://elsewhere.example/"})
    assert (moved["action"], moved["redirect_url"], moved["redirect_http_code"]) == (
        "REDIRECT_TO_URL",
        "https://elsewhere.example/",
        302,
    )
    assert moved["redirect_pool_id"] is None
    rejecting = await put({"action": "REJECT"})
    assert (rejecting["redirect_url"], rejecting["redirect_http_code"]) == (None, None)
