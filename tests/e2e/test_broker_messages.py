"""Hostile and repeated messages on the broker: dead-lettered or ignored, never a crash."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from pydantic import SecretStr

from api_service.secret_keys import SecretKeys
from shared.messages import Command, Result
from shared.status import Outcome
from shared.topology import PROVIDERS_ROUTING_KEY, RESULTS_ROUTING_KEY
from tests.support.client import LbaasClient
from tests.support.stack import SECRET_KEY, Agent, Api, Isolation, eventually


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


async def _command(isolation: Isolation, op_id: str) -> Command:
    """The command of an operation as the outbox holds it, opened with the run's key (as only
    the API, or an operator holding LBAAS_SECRET_KEYS, can)."""
    [row] = await isolation.fetch("SELECT payload FROM outbox WHERE op_id = $1", UUID(op_id))
    sealed = row["payload"]
    return Command.model_validate_json(SecretKeys([SecretStr(SECRET_KEY)]).open(sealed))


def _result(
    lb: dict[str, Any], operation: dict[str, Any], secret: SecretStr, **changes: Any
) -> bytes:
    now = datetime.now(UTC)
    result = Result(
        op_id=operation["id"],
        device_id=operation["device_id"],
        loadbalancer_id=lb["id"],
        generation=operation["generation"],
        result_secret=secret,
        outcome=Outcome.ERROR,
        error="replayed",
        agent_id="intruder",
        started_at=now,
        finished_at=now,
    )
    return result.model_copy(update=changes).model_dump_json().encode()


FORGED_SECRET = SecretStr("forged-" + "x" * 40)


async def test_a_result_without_its_commands_secret_is_dead_lettered_and_the_real_one_counts(
    client: LbaasClient, isolation: Isolation
) -> None:
    device = await client.create_device("sim", url=f"sim://slow-{uuid4().hex[:8]}?latency=2")
    lb = (await client.create_lb(device)).json()["loadbalancer"]
    operation = (await client.operations(lb["id"]))[0]
    assert operation["status"] == "PENDING"
    forged = _result(lb, operation, FORGED_SECRET, agent_id="forger-secret", error="forged")
    await _publish(isolation, isolation.names.results_exchange, RESULTS_ROUTING_KEY, forged)
    await _dead_letters(isolation, b"forger-secret")
    assert (await client.get_lb(lb["id"])).json()["loadbalancer"]["provisioning_status"] == (
        "PENDING_CREATE"
    )
    assert (await client.wait_lb(lb["id"]))["provisioning_status"] == "ACTIVE"
    [done] = await client.operations(lb["id"])
    assert (done["status"], done["agent_id"]) == ("SUCCEEDED", "agent-main")


async def test_duplicate_and_stale_results_change_nothing(
    client: LbaasClient, isolation: Isolation
) -> None:
    lb, operation = await _active_lb(client)
    secret = (await _command(isolation, operation["id"])).result_secret
    names = isolation.names
    replayed = _result(lb, operation, secret)
    await _publish(isolation, names.results_exchange, RESULTS_ROUTING_KEY, replayed)

    response = await client.http.put(
        f"/v2/lbaas/loadbalancers/{lb['id']}", json={"loadbalancer": {"name": "v2"}}
    )
    assert response.status_code == 202
    await client.wait_lb(lb["id"])
    # generation 1's result arriving after generation 2 is ACTIVE must not undo it
    await _publish(isolation, names.results_exchange, RESULTS_ROUTING_KEY, replayed)
    forgeries: dict[str, dict[str, Any]] = {
        "unknown operation": {"op_id": UUID("00000000-0000-4000-8000-00000000dead")},
        "wrong generation": {"generation": 99, "agent_id": "forger-generation"},
        "wrong device": {"device_id": uuid4(), "agent_id": "forger-device"},
        "wrong load balancer": {"loadbalancer_id": uuid4(), "agent_id": "forger-lb"},
    }
    for changes in forgeries.values():
        forged = _result(lb, operation, secret, outcome=Outcome.ACTIVE, **changes)
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


async def test_a_malformed_provider_announcement_is_dead_lettered_and_logged(
    client: LbaasClient, isolation: Isolation, api: Api
) -> None:
    names = isolation.names
    await _publish(isolation, names.providers_exchange, PROVIDERS_ROUTING_KEY, b"{garbage-ann")
    forged = b'{"schema_version": 1, "agent_id": "x", "announced_at": "2026-12-01T00:00:00Z",'
    forged += b' "providers": [{"name": "Bad Name!", "description": "forged-ann",'
    forged += b' "capabilities": {}}]}'
    await _publish(isolation, names.providers_exchange, PROVIDERS_ROUTING_KEY, forged)
    for marker in (b"garbage-ann", b"forged-ann"):
        dead = await _dead_letters(isolation, marker)
        assert dead.headers["x-first-death-reason"] == "rejected"
    assert api.log().count("dead-lettering a malformed provider announcement") >= 2
    providers = (await client.http.get("/v2/lbaas/providers")).json()["providers"]
    assert "forged-ann" not in {p["description"] for p in providers}
