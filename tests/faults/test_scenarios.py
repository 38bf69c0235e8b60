"""One fault per scenario, injected into the harness's workload (see ``tests.faults.harness``):
nothing accepted is lost, nothing stays PENDING_*, every device holds what the database says.

Scenarios that stop the broker or the database run their own private servers; the
machine's shared ones are never stopped.
"""

import asyncio
import random
import signal
from pathlib import Path
from urllib.parse import urlsplit

import aio_pika
import pytest

from shared.topology import PROVIDERS_ROUTING_KEY, RESULTS_ROUTING_KEY, STATUS_ROUTING_KEY
from tests.faults.harness import (
    SEED,
    FaultStack,
    Report,
    StackShape,
    Workload,
    assert_clean,
    fault_stack,
    run_scenario,
    until_accepted,
    until_rows,
)
from tests.support.stack import AMQP_URL, isolated
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

AMQP_PORT = urlsplit(AMQP_URL).port or 5672


async def test_agent_killed_mid_apply(log_dir: Path, tmp_path: Path) -> None:
    """``kill -9`` of an agent while it applies; the other two take its shards over."""
    shape = StackShape(sim_latency=0.3)
    async with (
        isolated() as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", shape) as stack,
    ):
        rng = random.Random(SEED)

        async def fault(workload: Workload, report: Report) -> None:
            for _ in range(2):
                await until_accepted(workload, rng.randrange(3, 8))
                victim = rng.choice([a for a in stack.agents if a.running])
                victim.kill()
                report.faults.append(f"kill -9 of agent {victim.agent_id}")
                await until_accepted(workload, 4)
                victim.start()

        report = await run_scenario("agent-killed", stack, fault, seed=SEED)
    assert_clean(report)


async def test_api_replica_killed_at_random_moments(log_dir: Path, tmp_path: Path) -> None:
    """``kill -9`` of an API replica at seeded moments, then started again; clients send what
    got no answer to the other replica. The first kill comes between commit and publish:
    the replica's broker link is cut, so its changes stay in the outbox, committed and
    unpublished, when it dies; the other replica's relay publishes them."""
    proxies = [TcpProxy("127.0.0.1", AMQP_PORT) for _ in range(2)]
    for proxy in proxies:
        await proxy.start()
    try:
        async with (
            isolated() as isolation,
            fault_stack(
                isolation,
                log_dir,
                tmp_path / "sim",
                StackShape(),
                api_amqp_url=lambda n: proxies[n].url_for(isolation.api_amqp_url),
            ) as stack,
        ):
            rng = random.Random(SEED)

            async def fault(workload: Workload, report: Report) -> None:
                await until_accepted(workload, 4)
                proxies[0].partition()
                await until_rows(
                    stack,
                    "SELECT count(*) AS n FROM outbox WHERE published_at IS NULL",
                    "a committed, unpublished command",
                )
                stack.apis[0].kill()
                report.faults.append("kill -9 of API replica 0 holding unpublished commands")
                proxies[0].heal()
                await stack.restart_api(0)
                for _ in range(3):
                    await until_accepted(workload, rng.randrange(2, 6))
                    await asyncio.sleep(rng.random() * 0.2)  # a seeded moment, not a wait
                    index = rng.randrange(len(stack.apis))
                    stack.apis[index].kill()
                    report.faults.append(f"kill -9 of API replica {index}")
                    await stack.restart_api(index)

            report = await run_scenario("api-killed", stack, fault, seed=SEED)
    finally:
        for proxy in proxies:
            await proxy.stop()
    assert_clean(report)


async def test_all_agents_down_beyond_the_pending_timeout(log_dir: Path, tmp_path: Path) -> None:
    """Every agent away longer than the pending timeout: the reaper puts the changes in
    ERROR, and once agents are back their late results heal them (or ERROR stays with a
    reason)."""
    shape = StackShape(pending_timeout=4.0)
    async with (
        isolated() as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", shape) as stack,
    ):

        async def fault(workload: Workload, report: Report) -> None:
            await until_accepted(workload, 4)
            for agent in stack.agents:
                agent.kill()
            report.faults.append("kill -9 of every agent")
            await until_accepted(workload, 3)
            await _reaped(stack)
            report.faults.append("the reaper put PENDING_* objects in ERROR")
            for agent in stack.agents:
                agent.start()

        report = await run_scenario("agents-down", stack, fault, seed=SEED)
        healed = await isolation.fetch(
            "SELECT count(*) FILTER (WHERE provisioning_status = 'ERROR') AS errors, "
            "count(*) AS n FROM loadbalancers"
        )
    assert_clean(report)
    assert healed[0]["errors"] == 0, "late results heal what the reaper timed out"


async def _reaped(stack: FaultStack) -> None:
    await until_rows(
        stack,
        "SELECT count(*) AS n FROM operations WHERE status = 'TIMED_OUT'",
        "the reaper to time an operation out",
    )


async def test_agent_partitioned_from_the_broker_while_it_applies(
    log_dir: Path, tmp_path: Path
) -> None:
    """Each agent reaches the broker through a TCP proxy; one is cut off mid-apply, then
    let back: its shards move to the others, and what it applied is not applied twice out
    of order."""
    proxies = [TcpProxy("127.0.0.1", AMQP_PORT) for _ in range(3)]
    for proxy in proxies:
        await proxy.start()
    shape = StackShape(sim_latency=0.2)
    try:
        async with (
            isolated() as isolation,
            fault_stack(
                isolation,
                log_dir,
                tmp_path / "sim",
                shape,
                agent_amqp_url=lambda n: proxies[n].url_for(isolation.agent_amqp_url),
            ) as stack,
        ):
            rng = random.Random(SEED)

            async def fault(workload: Workload, report: Report) -> None:
                for _ in range(2):
                    await until_accepted(workload, rng.randrange(3, 8))
                    index = rng.randrange(len(proxies))
                    proxies[index].partition()
                    report.faults.append(f"agent {index} cut off from the broker")
                    await until_accepted(workload, 4)
                    proxies[index].heal()

            report = await run_scenario("agent-partitioned", stack, fault, seed=SEED)
    finally:
        for proxy in proxies:
            await proxy.stop()
    assert_clean(report)


async def test_a_device_that_hangs_beyond_the_pending_timeout(
    log_dir: Path, tmp_path: Path
) -> None:
    """The HAProxy device's daemon stopped (SIGSTOP) longer than the pending timeout, then
    continued: changes on it time out to ERROR, and are applied once it answers again."""
    shape = StackShape(pending_timeout=4.0, sim_devices=1)
    async with (
        isolated() as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", shape) as stack,
    ):
        device = stack.haproxy[0]

        async def fault(workload: Workload, report: Report) -> None:
            await until_accepted(workload, 4)
            assert device.popen is not None
            device.popen.send_signal(signal.SIGSTOP)
            report.faults.append("SIGSTOP of the HAProxy device's daemon")
            try:
                await until_accepted(workload, 4)
                await _reaped(stack)
            finally:
                device.popen.send_signal(signal.SIGCONT)
            report.faults.append("SIGCONT once the reaper had timed changes out")

        report = await run_scenario("device-hung", stack, fault, seed=SEED)
    assert_clean(report)


async def test_duplicated_and_reordered_results(log_dir: Path, tmp_path: Path) -> None:
    """Every result the agents publish is copied (a queue of the test's bound beside the
    API's) and sent again, twice each, shuffled: nothing changes for them."""
    async with (
        isolated() as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", StackShape()) as stack,
    ):
        rng = random.Random(SEED)
        connection = await aio_pika.connect(isolation.amqp_url)
        async with connection:
            channel = await connection.channel()
            names = isolation.names
            tap = await channel.declare_queue(exclusive=True)
            await tap.bind(names.results_exchange, routing_key=RESULTS_ROUTING_KEY)
            exchange = await channel.get_exchange(names.results_exchange)

            async def fault(workload: Workload, report: Report) -> None:
                copies: list[aio_pika.abc.AbstractIncomingMessage] = []
                await until_accepted(workload, 30)
                while (message := await tap.get(no_ack=True, fail=False)) is not None:
                    copies.append(message)
                resent = copies * 2
                rng.shuffle(resent)
                for message in resent:
                    await exchange.publish(
                        aio_pika.Message(message.body, content_type=message.content_type),
                        routing_key=RESULTS_ROUTING_KEY,
                    )
                report.faults.append(f"{len(copies)} results sent twice more, shuffled")

            report = await run_scenario("results-replayed", stack, fault, seed=SEED)
    assert_clean(report)


async def test_poison_messages_on_every_queue(log_dir: Path, tmp_path: Path) -> None:
    """Garbage, wrong schemas and forged results on every queue while the workload runs: each
    is dead-lettered, no process exits, the workload converges."""
    async with (
        isolated() as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", StackShape()) as stack,
    ):
        names = isolation.names
        targets = [(names.commands_exchange, str(shard)) for shard in range(names.shards)]
        targets += [
            (names.results_exchange, RESULTS_ROUTING_KEY),
            (names.status_exchange, STATUS_ROUTING_KEY),
            (names.providers_exchange, PROVIDERS_ROUTING_KEY),
        ]
        poisons = [b"\x00\xff not json", b"{}", b'{"schema_version": 99}', b"[" * 10_000]
        connection = await aio_pika.connect(isolation.amqp_url)
        async with connection:
            channel = await connection.channel()

            async def fault(workload: Workload, report: Report) -> None:
                await until_accepted(workload, 5)
                for exchange_name, routing_key in targets:
                    exchange = await channel.get_exchange(exchange_name)
                    for body in poisons:
                        await exchange.publish(
                            aio_pika.Message(body, content_type="application/json"),
                            routing_key=routing_key,
                        )
                report.faults.append(f"{len(targets) * len(poisons)} poison messages")

            report = await run_scenario("poison-messages", stack, fault, seed=SEED)
            dead = await channel.declare_queue(names.dead_queue, passive=True)
            dead_letters = dead.declaration_result.message_count or 0
            exited = [p.argv[0] for p in [*stack.apis, *stack.agents] if not p.running]
    assert_clean(report)
    assert exited == []
    assert dead_letters >= len(targets) * len(poisons)
