"""One fault per scenario, injected into the harness's workload (see ``tests.faults.harness``):
nothing accepted is lost, nothing stays PENDING_*, every device holds what the database says.

Scenarios that stop the broker or the database run their own private servers; the
machine's shared ones are never stopped.
"""

import asyncio
import os
import random
from pathlib import Path

import pytest

from tests.faults.harness import (
    FaultStack,
    Report,
    StackShape,
    Workload,
    fault_stack,
    run_scenario,
    until_accepted,
)
from tests.support.stack import eventually, isolated

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("LBAAS_FAULT_SEED", "1"))


def _assert_clean(report: Report) -> None:
    assert report.violations == 0, report.table()
    assert report.objects_tracked > 0, report.table()


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
    _assert_clean(report)


async def test_api_replica_killed_at_random_moments(log_dir: Path, tmp_path: Path) -> None:
    """``kill -9`` of one API replica at seeded moments, then started again; clients send
    what got no answer to the other replica."""
    async with (
        isolated() as isolation,
        fault_stack(isolation, log_dir, tmp_path / "sim", StackShape()) as stack,
    ):
        rng = random.Random(SEED)

        async def fault(workload: Workload, report: Report) -> None:
            for _ in range(3):
                await until_accepted(workload, rng.randrange(2, 6))
                await asyncio.sleep(rng.random() * 0.2)  # a seeded moment, not a wait for state
                index = rng.randrange(len(stack.apis))
                stack.apis[index].kill()
                report.faults.append(f"kill -9 of API replica {index}")
                await stack.restart_api(index)

        report = await run_scenario("api-killed", stack, fault, seed=SEED)
    _assert_clean(report)


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
    _assert_clean(report)
    assert healed[0]["errors"] == 0, "late results heal what the reaper timed out"


async def _reaped(stack: FaultStack) -> None:
    async def reaped() -> bool | None:
        rows = await stack.isolation.fetch(
            "SELECT count(*) AS n FROM operations WHERE status = 'TIMED_OUT'"
        )
        return True if rows[0]["n"] > 0 else None

    await eventually(reaped, timeout=30, what="the reaper to time an operation out")
