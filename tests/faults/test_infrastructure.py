"""The broker and the database taken away under the workload (see ``tests.faults.harness``).

Every scenario here runs private servers: a RabbitMQ node or a 3-node cluster, a
PostgreSQL instance or a primary with a synchronous standby. The services reach a
cluster by the URLs of all its nodes and the standby pair by one multi-host URL
(``target_session_attrs=read-write``), as an operator configures them.
"""

import asyncio
import json
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.faults.harness import Report, StackShape, Workload, fault_stack, run_scenario
from tests.faults.harness import until_accepted as accepted
from tests.support.postgres_node import PostgresPair, PrivatePostgres
from tests.support.rabbitmq_cluster import RabbitMQCluster
from tests.support.rabbitmq_node import PrivateRabbitMQ
from tests.support.stack import isolated

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("LBAAS_FAULT_SEED", "1"))
OUTAGE = 3.0
"""Seconds a server stays away: a moment the workload keeps sending requests through."""


def _assert_clean(report: Report) -> None:
    assert report.violations == 0, report.table()
    assert report.objects_tracked > 0, report.table()


@pytest.fixture
async def broker() -> AsyncIterator[PrivateRabbitMQ]:
    node = PrivateRabbitMQ.in_temp_dir()
    try:
        await asyncio.to_thread(node.start)
        yield node
    finally:
        await asyncio.to_thread(node.destroy)


@pytest.fixture
async def cluster() -> AsyncIterator[RabbitMQCluster]:
    nodes = await asyncio.to_thread(RabbitMQCluster.start)
    try:
        yield nodes
    finally:
        await asyncio.to_thread(nodes.destroy)


@pytest.fixture
async def postgres() -> AsyncIterator[PrivatePostgres]:
    server = PrivatePostgres.in_temp_dir()
    try:
        await asyncio.to_thread(server.init)
        await asyncio.to_thread(server.start)
        yield server
    finally:
        await asyncio.to_thread(server.destroy)


@pytest.fixture
async def pair() -> AsyncIterator[PostgresPair]:
    servers = await asyncio.to_thread(PostgresPair.start)
    try:
        yield servers
    finally:
        await asyncio.to_thread(servers.destroy)


async def _away(workload: Workload, seconds: float) -> None:
    """The outage lasts ``seconds`` while the workload goes on: the wall clock is the fault."""
    await asyncio.sleep(seconds)


async def test_broker_restarted(broker: PrivateRabbitMQ, log_dir: Path, tmp_path: Path) -> None:
    async with (
        isolated(broker.url, broker_users=False) as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", StackShape()) as stack,
    ):

        async def fault(workload: Workload, report: Report) -> None:
            await accepted(workload, 6)
            await asyncio.to_thread(broker.stop)
            report.faults.append("RabbitMQ stopped")
            await _away(workload, OUTAGE)
            await asyncio.to_thread(broker.start)
            report.faults.append("RabbitMQ started again on its data")

        report = await run_scenario("broker-restarted", stack, fault, seed=SEED)
    _assert_clean(report)


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
                await accepted(workload, 6)
                node = cluster.nodes[index]
                await asyncio.to_thread(node.stop)
                report.faults.append(f"RabbitMQ node {index} stopped")
                await accepted(workload, 6)
                await asyncio.to_thread(node.start)
                report.faults.append(f"RabbitMQ node {index} back")

        report = await run_scenario("broker-cluster-node-lost", stack, fault, seed=SEED)
    _assert_clean(report)


async def test_database_restarted(postgres: PrivatePostgres, log_dir: Path, tmp_path: Path) -> None:
    async with (
        isolated(server=postgres) as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", StackShape()) as stack,
    ):

        async def fault(workload: Workload, report: Report) -> None:
            await accepted(workload, 6)
            await asyncio.to_thread(postgres.stop)
            report.faults.append("PostgreSQL stopped")
            await _away(workload, OUTAGE)
            await asyncio.to_thread(postgres.start)
            report.faults.append("PostgreSQL started again")

        report = await run_scenario("database-restarted", stack, fault, seed=SEED)
    _assert_clean(report)


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
            await accepted(workload, 10)
            took = await asyncio.to_thread(pair.fail_over)
            report.faults.append(f"primary killed, standby promoted in {took:.2f} s")

        report = await run_scenario("database-failover", stack, fault, seed=SEED)
    _assert_clean(report)
