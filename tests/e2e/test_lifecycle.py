"""The 202 → agent → result path with real API and agent processes, PostgreSQL and RabbitMQ."""

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from tests.support.client import LbaasClient
from tests.support.stack import Api


def journal(sim_dir: Path, appliance: str) -> list[dict[str, Any]]:
    path = sim_dir / appliance / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


async def test_create_is_accepted_then_active_with_a_succeeded_operation(
    client: LbaasClient,
) -> None:
    device = await client.create_device("noop")
    response = await client.create_lb(device, name="shop")

    assert response.status_code == 202
    lb = response.json()["loadbalancer"]
    assert lb["provisioning_status"] == "PENDING_CREATE"
    assert response.headers["location"].endswith(f"/v2/lbaas/loadbalancers/{lb['id']}")
    assert response.headers["retry-after"] == "1"
    op_id = response.headers["x-operation-id"]

    active = await client.wait_lb(lb["id"])
    assert active["provisioning_status"] == "ACTIVE"
    assert active["operating_status"] == "ONLINE"
    assert active["vip_address"].startswith(device["vip_cidr"].rsplit(".", 1)[0])

    operation = (await client.http.get(f"/v2/lbaas/operations/{op_id}")).json()["operation"]
    assert operation["status"] == "SUCCEEDED"
    assert operation["agent_id"] == "agent-main"
    assert operation["action"] == "create"
    assert operation["generation"] == 1
    started = datetime.fromisoformat(operation["started_at"])
    finished = datetime.fromisoformat(operation["finished_at"])
    completed = datetime.fromisoformat(operation["completed_at"])
    created = datetime.strptime(operation["created_at"], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    assert created <= started <= finished <= completed


async def test_update_then_delete_reach_the_device(client: LbaasClient, sim_dir: Path) -> None:
    device = await client.create_device("sim", url="sim://lifecycle-1?latency=0.05")
    lb = (await client.create_lb(device)).json()["loadbalancer"]
    await client.wait_lb(lb["id"])

    free_text = "renamed #'\"${HOME}%[src]\\"
    response = await client.http.put(
        f"/v2/lbaas/loadbalancers/{lb['id']}",
        json={
            "loadbalancer": {"name": free_text, "description": free_text, "admin_state_up": False}
        },
    )
    assert response.status_code == 202, response.text
    assert response.json()["loadbalancer"]["provisioning_status"] == "PENDING_UPDATE"
    updated = await client.wait_lb(lb["id"])
    assert (updated["name"], updated["provisioning_status"], updated["generation"]) == (
        free_text,
        "ACTIVE",
        2,
    )
    state = (sim_dir / "lifecycle-1" / "loadbalancers" / f"{lb['id']}.json").read_text()
    stored = json.loads(state)
    assert (stored["generation"], stored["admin_state_up"]) == (2, False)
    assert "renamed" not in state  # names and descriptions never reach a device

    response = await client.http.delete(f"/v2/lbaas/loadbalancers/{lb['id']}")
    assert response.status_code == 202
    assert response.json()["loadbalancer"]["provisioning_status"] == "PENDING_DELETE"
    await client.wait_gone(lb["id"])
    assert not (sim_dir / "lifecycle-1" / "loadbalancers" / f"{lb['id']}.json").exists()
    assert [op["status"] for op in await client.operations(lb["id"])] == ["SUCCEEDED"] * 3


async def test_driver_failure_is_error_with_reason_and_error_can_be_deleted(
    client: LbaasClient, sim_dir: Path
) -> None:
    device = await client.create_device("sim", url="sim://failing-1?fail=1")
    lb = (await client.create_lb(device)).json()["loadbalancer"]

    failed = await client.wait_lb(lb["id"])
    assert failed["provisioning_status"] == "ERROR"
    assert "simulated failure" in failed["status_reason"]
    operation = (await client.operations(lb["id"]))[0]
    assert operation["status"] == "FAILED"
    assert "simulated failure" in operation["error"]

    response = await client.http.delete(f"/v2/lbaas/loadbalancers/{lb['id']}")
    assert response.status_code == 202, response.text
    await client.wait_gone(lb["id"])
    events = [(e["event"], e["loadbalancer_id"]) for e in journal(sim_dir, "failing-1")]
    assert ("delete_done", lb["id"]) in events


async def test_concurrent_updates_one_wins_one_conflicts(client: LbaasClient) -> None:
    # a slow device: the winner's change is still PENDING_UPDATE when the other one locks
    device = await client.create_device("sim", url="sim://slow-race?latency=1")
    lb = (await client.create_lb(device)).json()["loadbalancer"]
    await client.wait_lb(lb["id"])

    responses = await asyncio.gather(
        *(
            client.http.put(
                f"/v2/lbaas/loadbalancers/{lb['id']}", json={"loadbalancer": {"name": name}}
            )
            for name in ("left", "right")
        )
    )
    assert sorted(r.status_code for r in responses) == [202, 409]
    conflict = next(r for r in responses if r.status_code == 409)
    assert conflict.headers["content-type"] == "application/problem+json"
    assert lb["id"] in conflict.json()["detail"]
    assert "PENDING_UPDATE" in conflict.json()["detail"]
    winner = next(r for r in responses if r.status_code == 202).json()["loadbalancer"]["name"]
    assert (await client.wait_lb(lb["id"]))["name"] == winner


async def test_changes_while_pending_are_refused(client: LbaasClient) -> None:
    device = await client.create_device("sim", url="sim://slow-1?latency=2")
    lb = (await client.create_lb(device)).json()["loadbalancer"]
    path = f"/v2/lbaas/loadbalancers/{lb['id']}"

    update = await client.http.put(path, json={"loadbalancer": {"name": "x"}})
    delete = await client.http.delete(path)
    assert (update.status_code, delete.status_code) == (409, 409)
    assert "PENDING_CREATE" in delete.json()["detail"]
    assert (await client.wait_lb(lb["id"]))["provisioning_status"] == "ACTIVE"
    assert len(await client.operations(lb["id"])) == 1


async def test_device_with_load_balancers_cannot_be_deleted(client: LbaasClient) -> None:
    device = await client.create_device("noop")
    lb = (await client.create_lb(device)).json()["loadbalancer"]
    await client.wait_lb(lb["id"])

    response = await client.http.delete(f"/v2/lbaas/devices/{device['id']}")
    assert response.status_code == 409
    assert "1 load balancer" in response.json()["detail"]

    await client.http.delete(f"/v2/lbaas/loadbalancers/{lb['id']}")
    await client.wait_gone(lb["id"])
    assert (await client.http.delete(f"/v2/lbaas/devices/{device['id']}")).status_code == 204
    assert (await client.http.get(f"/v2/lbaas/devices/{device['id']}")).status_code == 404


async def test_metrics_count_what_happened(client: LbaasClient, api: Api) -> None:
    device = await client.create_device("noop")
    lb = (await client.create_lb(device)).json()["loadbalancer"]
    await client.wait_lb(lb["id"])
    async with httpx.AsyncClient() as anonymous:
        response = await anonymous.get(api.metrics_url)
    assert response.status_code == 200
    text = response.text
    assert 'lbaas_results_total{outcome="ACTIVE",verdict="applied"}' in text
    assert 'method="POST",route="/lbaas/loadbalancers",status="202"' in text
    assert "lbaas_outbox_backlog" in text and "lbaas_pending_loadbalancers" in text
