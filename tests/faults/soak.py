"""The fault soak: the harness's workload for ``--duration`` seconds, with a seeded fault
every few seconds (``kill -9`` of an agent or an API replica, an agent cut off from the
broker, the HAProxy device's daemon stopped and continued), then the invariants.

    python -m tests.faults.soak --duration 600 --seed 7

Needs the machine's PostgreSQL and RabbitMQ (``make services``); writes
``fault-results/soak.json`` (the processes' logs in ``fault-results/soak-logs/``) and
exits non-zero when an invariant does not hold.
"""

import argparse
import asyncio
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

from tests.faults.harness import (
    RESULTS_DIR,
    FaultStack,
    Report,
    StackShape,
    Workload,
    fault_stack,
    run_scenario,
)
from tests.support.stack import AMQP_URL, isolated
from tests.support.tcp_proxy import TcpProxy

Fault = Callable[[FaultStack, list[TcpProxy], random.Random], Awaitable[str]]


async def _kill_agent(stack: FaultStack, _: list[TcpProxy], rng: random.Random) -> str:
    agent = rng.choice(stack.agents)
    agent.kill()
    await asyncio.sleep(rng.uniform(0.5, 3))
    agent.start()
    return f"kill -9 of agent {agent.agent_id}"


async def _kill_api(stack: FaultStack, _: list[TcpProxy], rng: random.Random) -> str:
    index = rng.randrange(len(stack.apis))
    stack.apis[index].kill()
    await stack.restart_api(index)
    return f"kill -9 of API replica {index}"


async def _partition_agent(stack: FaultStack, proxies: list[TcpProxy], rng: random.Random) -> str:
    index = rng.randrange(len(proxies))
    proxies[index].partition()
    await asyncio.sleep(rng.uniform(0.5, 4))
    proxies[index].heal()
    return f"agent {index} cut off from the broker"


async def _hang_device(stack: FaultStack, _: list[TcpProxy], rng: random.Random) -> str:
    device = stack.haproxy[0]
    assert device.popen is not None
    device.popen.send_signal(signal.SIGSTOP)
    try:
        await asyncio.sleep(rng.uniform(0.5, 4))
    finally:
        device.popen.send_signal(signal.SIGCONT)
    return "the HAProxy device's daemon stopped and continued"


FAULTS: list[Fault] = [_kill_agent, _kill_api, _partition_agent, _hang_device]


async def soak(duration: float, seed: int, log_dir: Path, sim_dir: Path) -> Report:
    port = urlsplit(AMQP_URL).port or 5672
    proxies = [TcpProxy("127.0.0.1", port) for _ in range(3)]
    for proxy in proxies:
        await proxy.start()
    rng = random.Random(seed)
    try:
        async with (
            isolated() as isolation,
            fault_stack(
                isolation,
                log_dir,
                sim_dir,
                StackShape(sim_latency=0.1),
                agent_amqp_url=lambda n: proxies[n].url_for(isolation.agent_amqp_url),
            ) as stack,
        ):

            async def faults(workload: Workload, report: Report) -> None:
                ends = time.monotonic() + duration
                while time.monotonic() < ends:
                    await asyncio.sleep(rng.uniform(1, 5))  # the soak's pace: seeded moments
                    report.faults.append(await rng.choice(FAULTS)(stack, proxies, rng))
                workload.stop.set()

            steps = max(500, int(duration * 10))
            return await run_scenario(
                "soak", stack, faults, seed=seed, steps=steps, settle_timeout=180
            )
    finally:
        for proxy in proxies:
            await proxy.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of faults")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    log_dir = RESULTS_DIR / "soak-logs"
    shutil.rmtree(log_dir, ignore_errors=True)
    log_dir.mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="lbaas-soak-") as folder:
        report = asyncio.run(soak(args.duration, args.seed, log_dir, Path(folder) / "sim"))
    sys.exit(1 if report.violations else 0)


if __name__ == "__main__":
    main()
