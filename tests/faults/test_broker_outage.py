"""The broker is down when a request comes: 202 all the same, and ACTIVE once it is back."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.client import LbaasClient, authenticated
from tests.support.rabbitmq_node import PrivateRabbitMQ
from tests.support.stack import Agent, Api, Isolation, eventually, isolated, running


@pytest.fixture
async def private_broker() -> AsyncIterator[PrivateRabbitMQ]:
    broker = PrivateRabbitMQ.in_temp_dir()
    try:
        await asyncio.to_thread(broker.start)
        yield broker
    finally:
        await asyncio.to_thread(broker.destroy)


async def _readyz(http: httpx.AsyncClient, status: int) -> httpx.Response | None:
    response = await http.get("/readyz")
    return response if response.status_code == status else None


async def test_request_during_outage_is_accepted_and_delivered_later(
    private_broker: PrivateRabbitMQ, log_dir: Path
) -> None:
    async with isolated(private_broker.url, broker_users=False) as isolation:
        api = Api(isolation.env(outbox_interval=0.2), log_dir)
        agent = Agent(isolation.agent_env(), log_dir, "agent-outage")
        async with running(api, agent), authenticated(api.url) as http:
            api.start()
            agent.start()
            await api.wait_ready("/readyz")
            client = LbaasClient(http)
            device = await client.create_device("noop")

            await asyncio.to_thread(private_broker.stop)
            not_ready = await eventually(lambda: _readyz(http, 503), what="readyz to say 503")
            assert not_ready.headers["content-type"] == "application/problem+json"
            assert "RabbitMQ" in not_ready.json()["detail"]

            response = await client.create_lb(device)
            assert response.status_code == 202, response.text
            lb = response.json()["loadbalancer"]
            assert await _unpublished(isolation) == 1

            await asyncio.to_thread(private_broker.start)
            active = await client.wait_lb(lb["id"], ("ACTIVE",), timeout=60)
            assert active["generation"] == 1
            assert await _unpublished(isolation) == 0
            operations = await client.operations(lb["id"])
            assert [(op["status"], op["agent_id"]) for op in operations] == [
                ("SUCCEEDED", "agent-outage")
            ]
            await eventually(lambda: _readyz(http, 200), what="readyz to recover")


async def _unpublished(isolation: Isolation) -> int:
    rows = await isolation.fetch("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
    count: int = rows[0]["n"]
    return count
