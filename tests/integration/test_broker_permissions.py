"""The broker is a trust boundary: what each service's RabbitMQ user may do, and may not.

The users are those of ``scripts/rabbitmq-users.sh``, on a real broker. The agent
user may consume commands and publish results and status reports, and nothing
else: it cannot publish a command (not even through the default exchange), read
results, declare or bind anything. The API user may publish commands and consume
results and status reports, and nothing else. The topology is declared by the
operator (``lbaas-manage broker declare``, as the admin user), as here.
"""

import asyncio
from collections.abc import AsyncIterator

import aio_pika
import pytest
from aio_pika.abc import AbstractIncomingMessage
from aiormq.exceptions import ChannelAccessRefused

from shared.topology import (
    PROVIDERS_ROUTING_KEY,
    RESULTS_ROUTING_KEY,
    STATUS_ROUTING_KEY,
    declare_topology,
    passive_topology,
)
from tests.support.stack import BROKER_USERS, Isolation

pytestmark = pytest.mark.skipif(
    not BROKER_USERS, reason="LBAAS_TEST_BROKER_USERS=0: every process connects as guest"
)


@pytest.fixture(scope="module")
async def broker() -> AsyncIterator[Isolation]:
    """A vhost with both users and the topology, declared by the operator."""
    isolation = Isolation()
    try:
        await isolation.create_broker()
        await isolation.manage("broker", "declare")
        yield isolation
    finally:
        await isolation.drop_broker()


async def _publish(url: str, exchange: str, routing_key: str, body: bytes) -> None:
    """Publish as the services do: persistent, mandatory, confirmed. ``""`` is the default."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        target = (
            channel.default_exchange
            if exchange == ""
            else await channel.get_exchange(exchange, ensure=False)
        )
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await target.publish(message, routing_key=routing_key, mandatory=True)


async def _receive(url: str, queue_name: str, body: bytes, *, reject: bool = False) -> None:
    """Consume ``queue_name`` until the message ``body`` comes; ack it, or reject it."""
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name)
        async with asyncio.timeout(10), queue.iterator() as messages:
            message: AbstractIncomingMessage
            async for message in messages:
                if message.body != body:
                    await message.nack(requeue=True)
                elif reject:
                    await message.reject(requeue=False)
                    return
                else:
                    await message.ack()
                    return


async def test_each_service_does_its_part(broker: Isolation) -> None:
    api, agent, names = broker.api_amqp_url, broker.agent_amqp_url, broker.names

    await _publish(api, names.commands_exchange, "0", b"command-1")
    await _receive(agent, names.command_queue(0), b"command-1")

    await _publish(agent, names.results_exchange, RESULTS_ROUTING_KEY, b"result-1")
    await _publish(agent, names.status_exchange, STATUS_ROUTING_KEY, b"status-1")
    await _receive(api, names.results_queue, b"result-1")
    await _receive(api, names.status_queue, b"status-1")

    await _publish(agent, names.providers_exchange, PROVIDERS_ROUTING_KEY, b"providers-1")
    await _receive(api, names.providers_queue, b"providers-1")


async def test_the_agent_looks_the_topology_up_without_any_configure_permission(
    broker: Isolation,
) -> None:
    connection = await aio_pika.connect(broker.agent_amqp_url)
    async with connection:
        topology = await passive_topology(await connection.channel(), broker.names)
    assert [queue.name for queue in topology.command_queues] == broker.names.command_queues

    connection = await aio_pika.connect(broker.agent_amqp_url)
    async with connection:
        with pytest.raises(ChannelAccessRefused):
            await declare_topology(await connection.channel(), broker.names)


async def test_rejected_messages_are_dead_lettered_without_extra_permissions(
    broker: Isolation,
) -> None:
    names = broker.names
    await _publish(broker.api_amqp_url, names.commands_exchange, "1", b"bad-command")
    await _receive(broker.agent_amqp_url, names.command_queue(1), b"bad-command", reject=True)
    await _receive(broker.amqp_url, names.dead_queue, b"bad-command")

    await _publish(broker.agent_amqp_url, names.results_exchange, RESULTS_ROUTING_KEY, b"bad")
    await _receive(broker.api_amqp_url, names.results_queue, b"bad", reject=True)
    await _receive(broker.amqp_url, names.dead_queue, b"bad")


@pytest.mark.parametrize(
    ("exchange", "routing_key"),
    [("commands", "0"), ("default", "commands.0"), ("dead", "")],
)
async def test_the_agent_cannot_publish_commands(
    broker: Isolation, exchange: str, routing_key: str
) -> None:
    prefix = broker.names.prefix
    target = "" if exchange == "default" else f"{prefix}.{exchange}"
    key = f"{prefix}.{routing_key}" if exchange == "default" else routing_key
    with pytest.raises(ChannelAccessRefused):
        await _publish(broker.agent_amqp_url, target, key, b"forged-command")


@pytest.mark.parametrize("queue", ["results", "status", "dead"])
async def test_the_agent_cannot_read_what_is_meant_for_the_api(
    broker: Isolation, queue: str
) -> None:
    with pytest.raises(ChannelAccessRefused):
        await _receive(broker.agent_amqp_url, f"{broker.names.prefix}.{queue}", b"-")


async def test_the_agent_cannot_bind_commands_to_a_queue_it_may_write(broker: Isolation) -> None:
    """Routing commands into the results queue would take a bind: read on the commands exchange."""
    names = broker.names
    connection = await aio_pika.connect(broker.agent_amqp_url)
    async with connection:
        channel = await connection.channel()
        results_queue = await channel.get_queue(names.results_queue)
        with pytest.raises(ChannelAccessRefused):
            await results_queue.bind(names.commands_exchange, routing_key="0")


@pytest.mark.parametrize("user", ["api", "agent"])
async def test_neither_service_may_declare_the_topology(broker: Isolation, user: str) -> None:
    url = broker.api_amqp_url if user == "api" else broker.agent_amqp_url
    connection = await aio_pika.connect(url)
    async with connection:
        with pytest.raises(ChannelAccessRefused):
            await declare_topology(await connection.channel(), broker.names)


async def test_the_api_cannot_consume_commands_or_publish_results(broker: Isolation) -> None:
    names = broker.names
    with pytest.raises(ChannelAccessRefused):
        await _receive(broker.api_amqp_url, names.command_queue(0), b"-")
    for exchange, key in (
        (names.results_exchange, RESULTS_ROUTING_KEY),
        (names.status_exchange, STATUS_ROUTING_KEY),
        (names.providers_exchange, PROVIDERS_ROUTING_KEY),
        ("", names.results_queue),
    ):
        with pytest.raises(ChannelAccessRefused):
            await _publish(broker.api_amqp_url, exchange, key, b"forged-result")
    with pytest.raises(ChannelAccessRefused):
        await _receive(broker.api_amqp_url, names.dead_queue, b"-")
