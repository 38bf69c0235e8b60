"""Hostile and repeated messages on the broker: dead-lettered or ignored, never a crash."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import aio_pika
from aio_pika.abc import AbstractIncomingMessage

from shared.messages import Result
from shared.status import Outcome
from shared.topology import RESULTS_ROUTING_KEY
from tests.support.client import LbaasClient
from tests.support.stack import Agent, Isolation, eventually


async def _dead_letters(isolation: Isolation, marker: bytes) -> AbstractIncomingMessage:
    """Wait for the dead-lettered message whose body contains ``marker``; leave others queued."""
    connection = await aio_pika.connect(isolation.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(isolation.names.dead_queue, ensure=False)

        async def found() -> AbstractIncomingMessage | None:
            message = await queue.get(fail=False, no_ack=False)
            if message is None:
                return None
            if marker in message.body:
                await message.ack()
                return message
            await message.nack(requeue=True)
            return None

        return await eventually(found, timeout=15, what=f"{marker!r} in the dead-letter queue")


async def _publish(isolation: Isolation, exchange: str, key: str, body: bytes) -> None:
    connection = await aio_pika.connect(isolation.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        target = await channel.get_exchange(exchange, ensure=False)
        await target.publish(aio_pika.Message(body), routing_key=key, mandatory=True)


async def test_garbage_command_is_dead_lettered_and_the_agent_keeps_serving(
    client: LbaasClient, isolation: Isolation, agent: Agent
) -> None:
    for shard in range(isolation.names.shards):
        await _publish(isolation, isolation.names.commands_exchange, str(shard), b"\x00garbage-cmd")
    for _ in range(isolation.names.shards):
        dead = await _dead_letters(isolation, b"garbage-cmd")
        assert dead.headers["x-first-death-reason"] == "rejected"

    assert agent.running
    assert agent.log().count("to the dead-letter queue") >= isolation.names.shards
    device = await client.create_device("noop")
    lb = (await client.create_lb(device)).json()["loadbalancer"]
    assert (await client.wait_lb(lb["id"]))["provisioning_status"] == "ACTIVE"


async def _active_lb(client: LbaasClient) -> tuple[dict[str, Any], dict[str, Any]]:
    device = await client.create_device("noop")
    lb = (await client.create_lb(device)).json()["loadbalancer"]
    await client.wait_lb(lb["id"])
    operation = (await client.operations(lb["id"]))[0]
    return lb, operation


def _result(lb: dict[str, Any], operation: dict[str, Any], **changes: Any) -> bytes:
    now = datetime.now(UTC)
    result = Result(
        op_id=operation["id"],
        device_id=operation["device_id"],
        loadbalancer_id=lb["id"],
        generation=operation["generation"],
        outcome=Outcome.ERROR,
        error="replayed",
        agent_id="intruder",
        started_at=now,
        finished_at=now,
    )
    return result.model_copy(update=changes).model_dump_json().encode()


async def test_duplicate_and_stale_results_change_nothing(
    client: LbaasClient, isolation: Isolation
) -> None:
    lb, operation = await _active_lb(client)
    names = isolation.names
    await _publish(isolation, names.results_exchange, RESULTS_ROUTING_KEY, _result(lb, operation))

    response = await client.http.put(
        f"/v2/lbaas/loadbalancers/{lb['id']}", json={"loadbalancer": {"name": "v2"}}
    )
    assert response.status_code == 202
    await client.wait_lb(lb["id"])
    # generation 1's result arriving after generation 2 is ACTIVE must not undo it
    await _publish(isolation, names.results_exchange, RESULTS_ROUTING_KEY, _result(lb, operation))
    forgeries: dict[str, dict[str, Any]] = {
        "unknown operation": {"op_id": UUID("00000000-0000-4000-8000-00000000dead")},
        "wrong generation": {"generation": 99, "agent_id": "forger-generation"},
        "wrong device": {"device_id": uuid4(), "agent_id": "forger-device"},
        "wrong load balancer": {"loadbalancer_id": uuid4(), "agent_id": "forger-lb"},
    }
    for changes in forgeries.values():
        forged = _result(lb, operation, outcome=Outcome.ACTIVE, **changes)
        await _publish(isolation, names.results_exchange, RESULTS_ROUTING_KEY, forged)
    await _dead_letters(isolation, b"00000000-0000-4000-8000-00000000dead")
    for marker in (b"forger-generation", b"forger-device", b"forger-lb"):
        await _dead_letters(isolation, marker)
    await _publish(isolation, names.results_exchange, RESULTS_ROUTING_KEY, b"{not json")
    await _dead_letters(isolation, b"{not json")

    current = (await client.get_lb(lb["id"])).json()["loadbalancer"]
    assert (current["provisioning_status"], current["name"], current["generation"]) == (
        "ACTIVE",
        "v2",
        2,
    )
    operations = await client.operations(lb["id"])
    assert [(op["status"], op["agent_id"]) for op in operations] == [
        ("SUCCEEDED", "agent-main"),
        ("SUCCEEDED", "agent-main"),
    ]
