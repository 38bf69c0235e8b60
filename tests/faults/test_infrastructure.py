"""The broker and the database taken away under the workload (see ``tests.faults.harness``).

Every scenario here runs private servers: a RabbitMQ node or a 3-node cluster, a
PostgreSQL instance or a primary with a synchronous standby. The services reach a
cluster by the URLs of all its nodes and the standby pair by one multi-host URL
(``target_session_attrs=read-write``), as an operator configures them.
"""

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from tests.faults.harness import (
    SEED,
    Report,
    StackShape,
    Workload,
    assert_clean,
    fault_stack,
    run_scenario,
    until_accepted,
    until_answered,
)
from tests.support.postgres_node import PostgresPair, PrivatePostgres
from tests.support.rabbitmq_cluster import RabbitMQCluster
from tests.support.rabbitmq_node import PrivateRabbitMQ
from tests.support.stack import isolated

pytestmark = pytest.mark.slow

T = TypeVar("T")

OUTAGE_ANSWERS = 3
"""Changes the workload has answered while a server is away: the outage's length."""


@asynccontextmanager
async def _private(server: Callable[[], T], destroy: Callable[[T], None]) -> AsyncIterator[T]:
    """A private server started in a thread, destroyed afterwards."""
    started = await asyncio.to_thread(server)
    try:
        yield started
    finally:
        await asyncio.to_thread(destroy, started)


def _node() -> PrivateRabbitMQ:
    node = PrivateRabbitMQ.in_temp_dir()
    node.start()
    return node


def _postgres() -> PrivatePostgres:
    server = PrivatePostgres.in_temp_dir()
    server.init()
    server.start()
    return server


@pytest.fixture
async def broker() -> AsyncIterator[PrivateRabbitMQ]:
    async with _private(_node, PrivateRabbitMQ.destroy) as node:
        yield node


@pytest.fixture
async def cluster() -> AsyncIterator[RabbitMQCluster]:
    async with _private(RabbitMQCluster.start, RabbitMQCluster.destroy) as nodes:
        yield nodes


@pytest.fixture
async def postgres() -> AsyncIterator[PrivatePostgres]:
    async with _private(_postgres, PrivatePostgres.destroy) as server:
        yield server


@pytest.fixture
async def pair() -> AsyncIterator[PostgresPair]:
    async with _private(PostgresPair.start, PostgresPair.destroy) as servers:
        yield servers


async def test_broker_restarted(broker: PrivateRabbitMQ, log_dir: Path, tmp_path: Path) -> None:
    async with (
        isolated(broker.url, broker_users=False) as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", StackShape()) as stack,
    ):

        async def fault(workload: Workload, report: Report) -> None:
            await until_accepted(workload, 6)
            await asyncio.to_thread(broker.stop)
            report.faults.append("RabbitMQ stopped")
            await until_accepted(workload, OUTAGE_ANSWERS)  # the outbox keeps them
            await asyncio.to_thread(broker.start)
            report.faults.append("RabbitMQ started again on its data")

        report = await run_scenario("broker-restarted", stack, fault, seed=SEED)
    assert_clean(report)


async def test_cluster_loses_one_node_then_another(
    cluster: RabbitMQCluster, log_dir: Path, tmp_path: Path
) -> None:
    """Quorum queues with members on all three nodes; the node the queues were declared on
    (their leader) stops mid-run and comes back, then another. Nobody changes a setting."""
    urls = ",".join(cluster.urls())
    async with (
        isolated(cluster.urls()[0], broker_users=False) as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", StackShape(), amqp_url=urls) as stack,
    ):
        rng = random.Random(SEED)
        listed = json.loads(
            await asyncio.to_thread(
                cluster.rabbitmqctl, "list_queues", "name", "members", "--formatter", "json"
            )
        )
        ours = [q for q in listed if q["name"].startswith(isolation.queue_prefix)]
        nodes = sorted(node.name for node in cluster.nodes)
        assert ours and all(sorted(q["members"]) == nodes for q in ours), ours

        async def fault(workload: Workload, report: Report) -> None:
            for index in (0, rng.choice([1, 2])):
                await until_accepted(workload, 6)
                node = cluster.nodes[index]
                await asyncio.to_thread(node.stop)
                report.faults.append(f"RabbitMQ node {index} stopped")
                await until_accepted(workload, 6)
                await asyncio.to_thread(node.start)
                report.faults.append(f"RabbitMQ node {index} back")

        report = await run_scenario("broker-cluster-node-lost", stack, fault, seed=SEED)
    assert_clean(report)


async def test_database_restarted(postgres: PrivatePostgres, log_dir: Path, tmp_path: Path) -> None:
    async with (
        isolated(server=postgres) as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", StackShape()) as stack,
    ):

        async def fault(workload: Workload, report: Report) -> None:
            await until_accepted(workload, 6)
            await asyncio.to_thread(postgres.stop)
            report.faults.append("PostgreSQL stopped")
            await until_answered(workload, 503, OUTAGE_ANSWERS)
            await asyncio.to_thread(postgres.start)
            report.faults.append("PostgreSQL started again")

        report = await run_scenario("database-restarted", stack, fault, seed=SEED)
    assert_clean(report)


async def test_database_primary_killed_and_standby_promoted(
    pair: PostgresPair, log_dir: Path, tmp_path: Path
) -> None:
    """``kill -9`` of the primary and promotion of its synchronous standby: the services
    follow through their multi-host URL, and no accepted change is lost."""
    async with (
        isolated(server=pair) as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", StackShape()) as stack,
    ):

        async def fault(workload: Workload, report: Report) -> None:
            await until_accepted(workload, 10)
            took = await asyncio.to_thread(pair.fail_over)
            report.faults.append(f"primary killed, standby promoted in {took:.2f} s")

        report = await run_scenario("database-failover", stack, fault, seed=SEED)
    assert_clean(report)
