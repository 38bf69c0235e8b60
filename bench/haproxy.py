"""Benchmark of the HAProxy data plane: apply time, memory, and how fast a dead member shows.

Starts its own ``lbaas-device`` (and, for the last part, database, queue
prefix, ``lbaas-api`` and ``lbaas-agent``), measures, prints a table and
writes ``bench-results/haproxy.json``:

- apply time of a pool of 10 and of 1,000 members through the ``haproxy``
  driver (render + HTTP put + ``haproxy -c`` + swap + reload confirmed by
  ``show proc``), against ``haproxy -c`` of the same file alone, measured in
  the same run (the floor of a checked apply);
- memory (PSS) of each instance's HAProxy processes and of ``lbaas-device``;
- seconds from stopping a member's server to ``operating_status: ERROR`` in
  the API, with a monitor of delay 1 s and one failure to go down
  (``tests.support.haproxy.MONITOR``), for the agent's default status
  interval and for 1 s.

    python -m bench.haproxy [--samples 15] [--kills 5]
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from agent_service.drivers.haproxy import HaproxyDriver
from agent_service.settings import AgentSettings
from shared.messages import DeviceSpec, LoadBalancerSpec
from tests.support.client import LbaasClient, authenticated
from tests.support.haproxy import Backend, Device, create_web, http_spec
from tests.support.stack import Agent, Api, isolated, running

DEFAULT_STATUS_INTERVAL = AgentSettings.model_fields["status_interval"].default


def _spec(vip: str, members: int, generation: int) -> LoadBalancerSpec:
    """A pool of ``members`` servers; each generation changes the first one's weight."""
    addresses = [(f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}", 80) for i in range(members)]
    return http_spec(vip, addresses, generation, weight=1 + generation % 2)


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "max_ms": ordered[-1] * 1000,
    }


def _pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


async def measure_apply(device: Device, members: int, samples: int, vip: str) -> dict[str, Any]:
    driver = HaproxyDriver(AgentSettings())
    spec = DeviceSpec(
        id=uuid.uuid4(),
        name="bench",
        driver="haproxy",
        management_url=device.url,
        secret=device.secret,
        report_secret="unused-" + "r" * 32,
    )
    first = _spec(vip, members, 1)
    start = time.perf_counter()
    await driver.apply(spec, first)
    started = time.perf_counter() - start
    applies, checks = [], []
    config = device.instance_dir(str(first.id)) / "haproxy.cfg"
    for generation in range(2, samples + 2):
        changed = _spec(vip, members, generation)
        start = time.perf_counter()
        await driver.apply(spec, changed)
        applies.append(time.perf_counter() - start)
        start = time.perf_counter()
        check = await asyncio.create_subprocess_exec("haproxy", "-c", "-q", "-f", str(config))
        assert await check.wait() == 0
        checks.append(time.perf_counter() - start)
    pids = device.pids(str(first.id))
    return {
        "members": members,
        "config_bytes": config.stat().st_size,
        "first_start_ms": started * 1000,
        "apply": _stats(applies),
        "haproxy_check": _stats(checks),
        "apply_p50_over_check_p50": statistics.median(applies) / statistics.median(checks),
        "processes": len(pids),
        "pss_kib": sum(_pss_kib(pid) for pid in pids),
    }


async def measure_member_down(
    log_dir: Path, device: Device, kills: int, status_interval: float
) -> dict[str, Any]:
    """Seconds from a member's server stopping to ERROR in the API, and back to ONLINE."""
    backends = [Backend(f"b{i}") for i in range(2)]
    for backend in backends:
        await backend.start()
    async with isolated() as isolation:
        api = Api(isolation.api_env(log_level="WARNING"), log_dir)
        agent = Agent(
            isolation.agent_env(log_level="WARNING", status_interval=status_interval),
            log_dir,
            f"bench-agent-{status_interval:g}",
        )
        async with running(api, agent), authenticated(api.url, timeout=30) as http:
            api.start()
            agent.start()
            await api.wait_ready("/readyz")
            client = LbaasClient(http)
            registered = await client.create_device(**device.registration())
            lb = await create_web(client, registered, backends)
            pool_id = (await http.get(f"/v2/lbaas/listeners/{lb['listeners'][0]['id']}")).json()[
                "listener"
            ]["default_pool_id"]
            members = (await http.get(f"/v2/lbaas/pools/{pool_id}/members")).json()["members"]
            member = next(m for m in members if m["protocol_port"] == backends[1].port)
            url = f"/v2/lbaas/pools/{pool_id}/members/{member['id']}"

            async def until(status: str) -> float:
                start = time.perf_counter()
                while (await http.get(url)).json()["member"]["operating_status"] != status:
                    if time.perf_counter() - start > 60:
                        raise TimeoutError(f"member not {status} within 60 s")
                    await asyncio.sleep(0.05)
                return time.perf_counter() - start

            await until("ONLINE")
            down, up = [], []
            for _ in range(kills):
                await backends[1].stop()
                down.append(await until("ERROR"))
                await backends[1].start()
                up.append(await until("ONLINE"))
            await http.delete(f"/v2/lbaas/loadbalancers/{lb['id']}?cascade=true")
            await client.wait_gone(lb["id"])
    for backend in backends:
        await backend.stop()
    return {
        "status_interval_s": status_interval,
        "to_error_s": {"p50": statistics.median(down), "max": max(down), "n": len(down)},
        "to_online_s": {"p50": statistics.median(up), "max": max(up), "n": len(up)},
    }


async def main(samples: int, kills: int) -> dict[str, Any]:
    log_dir = Path(tempfile.mkdtemp(prefix="lbaas-bench-haproxy-"))
    device = Device(log_dir)
    device.start()
    try:
        await device.wait_ready()
        applies = [
            await measure_apply(device, members, samples, f"127.77.{i}.1")
            for i, members in enumerate((10, 1000))
        ]
        daemon = device.popen.pid if device.popen else 0
        member_down = [
            await measure_member_down(log_dir, device, kills, interval)
            for interval in (DEFAULT_STATUS_INTERVAL, 1.0)
        ]
        return {
            "apply": applies,
            "lbaas_device_pss_kib": _pss_kib(daemon),
            "member_down": member_down,
        }
    finally:
        device.purge()


def print_table(report: dict[str, Any]) -> None:
    print(
        f"{'pool size':<12}{'config':>10}{'apply p50':>12}{'apply max':>12}"
        f"{'check p50':>12}{'ratio':>8}{'first':>10}{'PSS':>10}"
    )
    for row in report["apply"]:
        print(
            f"{row['members']:<12}{row['config_bytes'] / 1024:>8.0f}KB"
            f"{row['apply']['p50_ms']:>10.1f}ms{row['apply']['max_ms']:>10.1f}ms"
            f"{row['haproxy_check']['p50_ms']:>10.1f}ms{row['apply_p50_over_check_p50']:>7.1f}x"
            f"{row['first_start_ms']:>8.0f}ms{row['pss_kib'] / 1024:>7.1f}MiB"
        )
    print(f"\nlbaas-device: {report['lbaas_device_pss_kib'] / 1024:.1f} MiB PSS")
    print(f"\n{'agent status interval':<24}{'to ERROR p50':>14}{'max':>8}{'to ONLINE p50':>15}")
    for row in report["member_down"]:
        print(
            f"{row['status_interval_s']:<24g}{row['to_error_s']['p50']:>12.2f} s"
            f"{row['to_error_s']['max']:>6.2f} s{row['to_online_s']['p50']:>13.2f} s"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--out", type=Path, default=Path("bench-results/haproxy.json"))
    args = parser.parse_args()
    report = asyncio.run(main(args.samples, args.kills))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"\nwritten to {args.out}")
