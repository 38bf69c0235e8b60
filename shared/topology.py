"""The AMQP topology, and how commands are routed.

::

    <prefix>.commands (direct) --"<shard>"--> <prefix>.commands.<shard>  (quorum, SAC)
    <prefix>.results  (direct) --"results"--> <prefix>.results           (quorum)
    <prefix>.status   (direct) --"status"---> <prefix>.status            (quorum, stats reports)
    <prefix>.providers (direct) --"providers"--> <prefix>.providers      (quorum, announcements)
    <prefix>.dead     (fanout) -------------> <prefix>.dead              (quorum)

Command queues have a single active consumer, so operations on one device stay
in order across agents, a delivery limit, and at-least-once dead-lettering
(which needs ``x-overflow: reject-publish``: with the default overflow the broker may
drop a dead letter).

The operator declares the topology once (``lbaas-manage broker declare``,
:func:`declare_topology`); the API and the agents only look it up
(:func:`passive_topology`), which needs no configure permission, so their
RabbitMQ users can neither create, bind nor delete anything.
"""

import zlib
from dataclasses import dataclass
from uuid import UUID

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, FieldValue

RESULTS_ROUTING_KEY = "results"
STATUS_ROUTING_KEY = "status"
PROVIDERS_ROUTING_KEY = "providers"


@dataclass(frozen=True)
class Names:
    """Every exchange and queue name of one deployment, all starting with ``prefix``."""

    prefix: str
    shards: int

    @property
    def commands_exchange(self) -> str:
        return f"{self.prefix}.commands"

    def command_queue(self, shard: int) -> str:
        return f"{self.prefix}.commands.{shard}"

    @property
    def command_queues(self) -> list[str]:
        return [self.command_queue(shard) for shard in range(self.shards)]

    @property
    def results_exchange(self) -> str:
        return f"{self.prefix}.results"

    @property
    def results_queue(self) -> str:
        return f"{self.prefix}.results"

    @property
    def status_exchange(self) -> str:
        return f"{self.prefix}.status"

    @property
    def status_queue(self) -> str:
        return f"{self.prefix}.status"

    @property
    def providers_exchange(self) -> str:
        return f"{self.prefix}.providers"

    @property
    def providers_queue(self) -> str:
        return f"{self.prefix}.providers"

    @property
    def dead_exchange(self) -> str:
        return f"{self.prefix}.dead"

    @property
    def dead_queue(self) -> str:
        return f"{self.prefix}.dead"


def shard_for(device_id: UUID | str, shards: int) -> int:
    """``crc32(device_id) % shards``: every command for a device goes to one queue."""
    return zlib.crc32(str(device_id).encode()) % shards


@dataclass(frozen=True)
class Topology:
    commands: AbstractExchange
    results: AbstractExchange
    command_queues: list[AbstractQueue]
    results_queue: AbstractQueue
    status: AbstractExchange
    status_queue: AbstractQueue
    dead_queue: AbstractQueue
    providers: AbstractExchange
    providers_queue: AbstractQueue


async def declare_topology(
    channel: AbstractChannel, names: Names, delivery_limit: int = 3
) -> Topology:
    """Declare (idempotently) every exchange, queue and binding of the deployment."""
    dead_exchange = await channel.declare_exchange(
        names.dead_exchange, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dead_queue = await channel.declare_queue(
        names.dead_queue, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead_queue.bind(dead_exchange)

    dead_lettered: dict[str, FieldValue] = {
        "x-queue-type": "quorum",
        "x-delivery-limit": delivery_limit,
        "x-dead-letter-exchange": names.dead_exchange,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    commands = await channel.declare_exchange(
        names.commands_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    command_queues = []
    for shard in range(names.shards):
        queue = await channel.declare_queue(
            names.command_queue(shard),
            durable=True,
            arguments={**dead_lettered, "x-single-active-consumer": True},
        )
        await queue.bind(commands, routing_key=str(shard))
        command_queues.append(queue)

    results = await channel.declare_exchange(
        names.results_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    results_queue = await channel.declare_queue(
        names.results_queue, durable=True, arguments=dead_lettered
    )
    await results_queue.bind(results, routing_key=RESULTS_ROUTING_KEY)

    status = await channel.declare_exchange(
        names.status_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    status_queue = await channel.declare_queue(
        names.status_queue, durable=True, arguments=dead_lettered
    )
    await status_queue.bind(status, routing_key=STATUS_ROUTING_KEY)

    providers = await channel.declare_exchange(
        names.providers_exchange, aio_pika.ExchangeType.DIRECT, durable=True
    )
    providers_queue = await channel.declare_queue(
        names.providers_queue, durable=True, arguments=dead_lettered
    )
    await providers_queue.bind(providers, routing_key=PROVIDERS_ROUTING_KEY)
    return Topology(
        commands,
        results,
        command_queues,
        results_queue,
        status,
        status_queue,
        dead_queue,
        providers,
        providers_queue,
    )


async def passive_topology(channel: AbstractChannel, names: Names) -> Topology:
    """Look up every exchange and queue of the deployment without declaring anything.

    Passive declarations: a missing entity raises
    ``aio_pika.exceptions.ChannelNotFoundEntity`` (and closes the channel), e.g.
    while no API has declared the topology yet.
    """
    try:
        return await _look_up(channel, names)
    except aio_pika.exceptions.ChannelNotFoundEntity as exc:
        raise TopologyMissing(
            f"the broker lacks the {names.prefix!r} topology ({exc}); "
            "declare it with `lbaas-manage broker declare`"
        ) from None


class TopologyMissing(Exception):
    """An exchange or queue is missing: the operator has not declared the topology yet."""


async def _look_up(channel: AbstractChannel, names: Names) -> Topology:
    commands = await channel.get_exchange(names.commands_exchange)
    command_queues = [await channel.get_queue(name) for name in names.command_queues]
    results = await channel.get_exchange(names.results_exchange)
    results_queue = await channel.get_queue(names.results_queue)
    status = await channel.get_exchange(names.status_exchange)
    status_queue = await channel.get_queue(names.status_queue)
    dead_queue = await channel.get_queue(names.dead_queue)
    providers = await channel.get_exchange(names.providers_exchange)
    providers_queue = await channel.get_queue(names.providers_queue)
    return Topology(
        commands,
        results,
        command_queues,
        results_queue,
        status,
        status_queue,
        dead_queue,
        providers,
        providers_queue,
    )
