"""Publishing commands: a request publishes its own command at once only when no older
command of its load balancer is unpublished; the relay keeps generation order otherwise."""

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import aio_pika
import pytest

from shared.topology import shard_for
from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Api, Isolation, eventually, isolated, running

PENDING_TIMEOUT_S = 1.0
PUBLISH_TIMEOUT_S = 1.0


@pytest.fixture
async def agentless(log_dir: Path) -> AsyncIterator[tuple[LbaasClient, Isolation]]:
    """An API whose commands nobody consumes, whose changes time out to ERROR quickly."""
    async with isolated() as isolation:
        api = Api(
            isolation.env(
                pending_timeout=PENDING_TIMEOUT_S,
                reaper_interval=0.2,
                outbox_interval=0.2,
                publish_timeout=PUBLISH_TIMEOUT_S,
            ),
            log_dir,
        )
        async with running(api), authenticated(api.url) as http:
            api.start()
            await api.wait_ready("/readyz")
            yield LbaasClient(http), isolation


async def _queued_generations(isolation: Isolation, device_id: str, lb_id: str) -> list[int]:
    """The generations of the load balancer's commands on its shard queue, in queue order
    (consumed: a single-active-consumer quorum queue has no basic.get; the queue is left
    empty)."""
    queue_name = isolation.names.command_queue(shard_for(device_id, isolation.names.shards))
    generations = []
    connection = await aio_pika.connect(isolation.amqp_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(queue_name, ensure=False)
        queued = (await queue.declare()).message_count or 0
        async with queue.iterator(no_ack=True) as messages:
            async for message in messages:
                command: dict[str, Any] = json.loads(message.body)
                if command["loadbalancer_id"] == lb_id:
                    generations.append(command["generation"])
                queued -= 1
                if queued == 0:
                    break
    return generations


async def _published(isolation: Isolation, lb_id: str) -> bool | None:
    """True once every command of the load balancer is marked published (else None)."""
    rows = await isolation.fetch(
        "SELECT 1 FROM outbox WHERE loadbalancer_id = $1 AND published_at IS NULL", UUID(lb_id)
    )
    return None if rows else True


async def _unpublish(isolation: Isolation, lb_id: str) -> datetime:
    """Make the load balancer's commands unpublished and new, as if just committed."""
    [row] = await isolation.fetch(
        "UPDATE outbox SET published_at = NULL, created_at = now()"
        " WHERE loadbalancer_id = $1 RETURNING created_at",
        UUID(lb_id),
    )
    created_at: datetime = row["created_at"]
    return created_at


async def _created(
    client: LbaasClient, isolation: Isolation
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A device and a load balancer on it, once the create's command is marked published."""
    device = await client.create_device("noop")
    lb: dict[str, Any] = (await client.create_lb(device)).json()["loadbalancer"]
    await eventually(lambda: _published(isolation, lb["id"]), what="the create's command")
    return device, lb


async def test_a_command_behind_an_unpublished_one_goes_after_it(
    agentless: tuple[LbaasClient, Isolation],
) -> None:
    client, isolation = agentless
    device, lb = await _created(client, isolation)
    assert (await client.wait_lb(lb["id"], ("ERROR",)))["provisioning_status"] == "ERROR"

    await _unpublish(isolation, lb["id"])  # as after an outage, younger than the grace
    renamed = await client.http.put(
        f"/v2/lbaas/loadbalancers/{lb['id']}", json={"loadbalancer": {"name": "renamed"}}
    )
    assert renamed.status_code == 202, renamed.text
    assert renamed.json()["loadbalancer"]["generation"] == 2

    await eventually(lambda: _published(isolation, lb["id"]), what="both published")
    # The create's own publish, then its row again as the head, then the change's.
    assert await _queued_generations(isolation, device["id"], lb["id"]) == [1, 1, 2]


async def test_the_relay_leaves_a_new_command_to_its_request_for_the_publish_timeout(
    agentless: tuple[LbaasClient, Isolation],
) -> None:
    client, isolation = agentless
    device, lb = await _created(client, isolation)
    assert await _queued_generations(isolation, device["id"], lb["id"]) == [1]
    [row] = await isolation.fetch(
        "SELECT attempts FROM outbox WHERE loadbalancer_id = $1", UUID(lb["id"])
    )
    assert row["attempts"] == 0

    committed = await _unpublish(isolation, lb["id"])
    await eventually(lambda: _published(isolation, lb["id"]), what="the relay to publish it")
    [row] = await isolation.fetch(
        "SELECT published_at FROM outbox WHERE loadbalancer_id = $1", UUID(lb["id"])
    )
    assert row["published_at"] - committed >= timedelta(seconds=PUBLISH_TIMEOUT_S)
    assert await _queued_generations(isolation, device["id"], lb["id"]) == [1]
