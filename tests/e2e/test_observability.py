"""What an operator sees: request ids in answers and log lines, and the API's metrics."""

import uuid

import httpx

from tests.support.client import LbaasClient
from tests.support.stack import Agent, Api, eventually


async def test_a_request_id_is_echoed_and_follows_the_change_to_the_agent(
    client: LbaasClient, agent: Agent
) -> None:
    request_id = f"test-{uuid.uuid4()}"
    answer = await client.http.get("/v2/lbaas/loadbalancers", headers={"X-Request-Id": request_id})
    assert answer.headers["x-request-id"] == request_id
    assert answer.headers["x-openstack-request-id"] == request_id

    made_up = await client.http.get("/v2/lbaas/loadbalancers", headers={"X-Request-Id": "a b"})
    assert made_up.headers["x-request-id"].startswith("req-")
    assert made_up.headers["x-request-id"] == made_up.headers["x-openstack-request-id"]

    device = await client.create_device("noop")
    body = {"loadbalancer": {"provider": "noop", "device_id": device["id"]}}
    created = await client.http.post(
        "/v2/lbaas/loadbalancers", json=body, headers={"X-Request-Id": request_id}
    )
    assert created.status_code == 202, created.text
    await client.wait_lb(created.json()["loadbalancer"]["id"], ("ACTIVE",))

    async def logged() -> bool | None:
        return True if f'"request_id": "{request_id}"' in agent.log() else None

    await eventually(logged, what="the request id in the agent's log line")


async def test_the_api_counts_operations_and_takes_a_census(client: LbaasClient, api: Api) -> None:
    device = await client.create_device("noop")
    lb = await client.wait_lb((await client.create_lb(device)).json()["loadbalancer"]["id"])
    assert lb["provisioning_status"] == "ACTIVE"

    async def metrics() -> str | None:
        async with httpx.AsyncClient() as http:
            text = (await http.get(api.metrics_url)).text
        return text if "lbaas_objects{" in text else None

    text = await eventually(metrics, timeout=20, what="the census in /metrics")
    assert 'lbaas_operations_total{action="create",status="SUCCEEDED"}' in text
    assert 'lbaas_operation_duration_seconds_count{action="create"}' in text
    assert 'lbaas_objects{kind="loadbalancer",provisioning_status="ACTIVE"}' in text
    assert "lbaas_result_lag_seconds_count" in text
    assert 'lbaas_devices{operating_status="' in text
    assert "lbaas_outbox_oldest_seconds" in text
