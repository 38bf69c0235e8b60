"""The private 3-node RabbitMQ cluster of the fault tests works, and leaves nothing behind.

A quorum queue declared through node 1 gets its leader there and a member on every
node; it keeps every confirmed message while its leader is stopped, a follower takes
the publishes, the old leader comes back on its data and a second node is stopped.
Destroying the cluster leaves no Erlang VM nor epmd of it running, and the machine's
own node untouched.
"""

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import aio_pika
import pytest

from tests.support.rabbitmq_cluster import RabbitMQCluster

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        RabbitMQCluster.unavailable_reason() is not None,
        reason=RabbitMQCluster.unavailable_reason() or "",
    ),
]

QUEUE = "cluster-selftest"
BATCH = 50
# The machine's node runs with the rabbitmq user's HOME; ours with their own.
MACHINE_NODE_MARK = "-home /var/lib/rabbitmq "


def _beam_and_epmd() -> list[str]:
    """``pgrep -af`` lines of every Erlang VM and epmd on the machine."""
    result = subprocess.run(
        ["pgrep", "-af", "beam|epmd"], capture_output=True, text=True, check=False, timeout=10
    )
    return result.stdout.splitlines()


def _ours(lines: list[str], cluster: RabbitMQCluster) -> list[str]:
    """The lines of processes of ``cluster``: by their command line or environment.

    An ``epmd -daemon`` that Erlang would start for the cluster shows no port on its
    command line, but inherits ``ERL_EPMD_PORT``.
    """
    marks = (str(cluster.base_dir), f"-port {cluster.epmd_port} ")
    env_mark = f"ERL_EPMD_PORT={cluster.epmd_port}".encode()
    ours: list[str] = []
    for line in lines:
        try:
            environ = Path(f"/proc/{line.split()[0]}/environ").read_bytes().split(b"\0")
        except OSError:  # gone since
            environ = []
        if env_mark in environ or any(mark in f"{line} " for mark in marks):
            ours.append(line)
    return ours


async def _declare(url: str) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.declare_queue(QUEUE, durable=True, arguments={"x-queue-type": "quorum"})


async def _publish(url: str, ids: range) -> None:
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        for i in ids:
            message = aio_pika.Message(
                f"message {i}".encode(),
                message_id=f"m-{i}",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
            await asyncio.wait_for(
                channel.default_exchange.publish(message, routing_key=QUEUE), timeout=30
            )


async def _consume(url: str, expected: int) -> tuple[set[str], int]:
    """Distinct message ids and the number of deliveries, once ``expected`` ids came."""
    ids: set[str] = set()
    deliveries = 0
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=expected)
        queue = await channel.declare_queue(QUEUE, passive=True)
        async with asyncio.timeout(30), queue.iterator() as messages:
            async for message in messages:
                async with message.process():
                    deliveries += 1
                    assert message.message_id is not None
                    ids.add(message.message_id)
                if len(ids) >= expected:
                    break
    return ids, deliveries


def _leader_and_members(cluster: RabbitMQCluster, node: int) -> tuple[str, list[str]]:
    """The queue's leader and members, as ``rabbitmqctl list_queues`` on ``node`` says."""
    out = cluster.rabbitmqctl(
        "list_queues", "name", "leader", "members", "--formatter", "json", node=node
    )
    row = next(row for row in json.loads(out) if row["name"] == QUEUE)
    leader: str = row["leader"]
    members: list[str] = row["members"]
    return leader, sorted(members)


async def _timed(what: str, timings: dict[str, float], call: Callable[[], None]) -> None:
    began = time.monotonic()
    await asyncio.to_thread(call)
    timings[what] = round(time.monotonic() - began, 1)


async def test_quorum_queue_survives_losing_nodes_in_turn() -> None:
    before = await asyncio.to_thread(_beam_and_epmd)
    timings: dict[str, float] = {}
    began = time.monotonic()
    cluster = await asyncio.to_thread(RabbitMQCluster.start)
    timings["cluster start"] = round(time.monotonic() - began, 1)
    base_dir = cluster.base_dir
    try:
        node1, node2, node3 = cluster.nodes
        assert len(set(cluster.urls())) == 3
        assert cluster.urls() == [node1.url, node2.url, node3.url]
        assert all(node.running for node in cluster.nodes)
        running = await asyncio.to_thread(cluster.running_nodes, 2)
        assert sorted(running) == sorted(node.name for node in cluster.nodes)
        # 3 VMs and the epmd, all ours, none of them the machine's.
        ours = await asyncio.to_thread(lambda: _ours(_beam_and_epmd(), cluster))
        assert len(ours) == 4, ours

        await _declare(node1.url)
        await _publish(node1.url, range(BATCH))
        names = sorted(node.name for node in cluster.nodes)
        leader, members = await asyncio.to_thread(_leader_and_members, cluster, 0)
        assert (leader, members) == (node1.name, names)

        await _timed("stop node 1 (leader)", timings, node1.stop)
        assert not node1.running
        await _publish(node2.url, range(BATCH, 2 * BATCH))
        await _timed("restart node 1 (rejoined)", timings, node1.start)
        assert node1.running
        await _timed("stop node 2", timings, node2.stop)

        ids, deliveries = await _consume(node3.url, 2 * BATCH)
        assert ids == {f"m-{i}" for i in range(2 * BATCH)}
        leader, members = await asyncio.to_thread(_leader_and_members, cluster, 2)
        assert leader in (node1.name, node3.name)
        assert members == names

        # kill -9 of a VM: gone at once; destroy() copes with nodes running, stopped
        # and killed.
        await _timed("kill -9 node 3", timings, node3.kill)
        assert not node3.running
        assert node3.name not in await asyncio.to_thread(cluster.running_nodes, 0)
    finally:
        await _timed("destroy", timings, cluster.destroy)
    timings["total"] = round(time.monotonic() - began, 1)
    after = await asyncio.to_thread(_beam_and_epmd)
    print(f"timings (s): {timings}; {deliveries} deliveries of {len(ids)} messages")
    print("beam/epmd before:", *before, sep="\n  ")
    print("beam/epmd after destroy:", *after, sep="\n  ")

    assert await asyncio.to_thread(_ours, after, cluster) == []
    assert not await asyncio.to_thread(base_dir.exists)
    # The machine's node is still there, with the same pid.
    assert [line for line in after if MACHINE_NODE_MARK in line] == [
        line for line in before if MACHINE_NODE_MARK in line
    ]
