"""Benchmark: memory of the API, the agent and the device daemon across a long run at steady
load, to show it stays flat.

Starts its own database, queue prefix, ``lbaas-api``, ``lbaas-agent`` and an ``lbaas-device``
(HAProxy), then runs ``--clients`` clients for ``--minutes``: each creates a load balancer
with an HTTP listener and a pool of two members in one call, waits for ``ACTIVE`` (long poll),
renames the listener, waits again, deletes the load balancer (cascade) and waits until it is
gone, over and over. Every ``--every`` seconds it samples the resident memory (RSS) of each
process. The first ``--warmup`` minutes (imports, pools, caches filling) are left out: the
table compares the median of the first minute after them with the median of the last
minute, against the target of ±10%. Writes ``bench-results/memory.json``.

    python -m bench.memory [--minutes 10] [--clients 4] [--every 5] [--warmup 1]
"""

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.run import LONG_POLL_S, api_env, until_active
from tests.support.client import LbaasClient, authenticated
from tests.support.haproxy import running_device
from tests.support.stack import Agent, Api, isolated, running

LBS = "/v2/lbaas/loadbalancers"
TARGET = 0.10


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _cycle(http: httpx.AsyncClient, device_id: str, n: int) -> None:
    """One load balancer's life: create, ACTIVE, rename its listener, ACTIVE, delete, gone."""
    pool = {
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [{"address": "127.0.0.1", "protocol_port": 20000 + i} for i in range(2)],
    }
    body = {
        "loadbalancer": {
            "name": f"mem-{n}",
            "device_id": device_id,
            "listeners": [{"protocol": "HTTP", "protocol_port": 8080, "default_pool": pool}],
        }
    }
    created = await http.post(LBS, json=body)
    assert created.status_code == 202, created.text
    lb = created.json()["loadbalancer"]
    await until_active(http, lb["id"])
    listener_id = lb["listeners"][0]["id"]
    renamed = await http.put(
        f"/v2/lbaas/listeners/{listener_id}", json={"listener": {"name": f"renamed-{n}"}}
    )
    assert renamed.status_code == 202, renamed.text
    await until_active(http, lb["id"])
    deleted = await http.delete(f"{LBS}/{lb['id']}", params={"cascade": "true"})
    assert deleted.status_code in (202, 204), deleted.text
    await LbaasClient(http).wait_gone(lb["id"], timeout=LONG_POLL_S)


async def steady_load(
    http: httpx.AsyncClient,
    device_id: str,
    pids: dict[str, int],
    *,
    seconds: float,
    clients: int,
    every: float,
) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + seconds
    samples: list[dict[str, Any]] = []
    cycles = [0]

    async def client(index: int) -> None:
        while time.monotonic() < deadline:
            await _cycle(http, device_id, index * 1_000_000 + cycles[0])
            cycles[0] += 1

    async def sample() -> None:
        while time.monotonic() < deadline:
            at = time.monotonic() - started
            samples.append({"at_s": at, **{name: _rss_kib(pid) for name, pid in pids.items()}})
            await asyncio.sleep(every)

    await asyncio.gather(sample(), *(client(i) for i in range(clients)))
    return {"cycles": cycles[0], "samples": samples}


def summary(samples: list[dict[str, Any]], names: list[str], warmup: float) -> list[dict[str, Any]]:
    """Per process: median RSS of the first minute after the warm-up and of the last minute."""
    end = samples[-1]["at_s"]
    first = [s for s in samples if warmup <= s["at_s"] < warmup + 60]
    last = [s for s in samples if s["at_s"] >= end - 60]
    rows = []
    for name in names:
        before = statistics.median(s[name] for s in first)
        after = statistics.median(s[name] for s in last)
        change = (after - before) / before
        rows.append(
            {
                "process": name,
                "first_minute_kib": before,
                "last_minute_kib": after,
                "change": change,
                "peak_kib": max(s[name] for s in samples),
                "met": abs(change) <= TARGET,
            }
        )
    return rows


async def main(minutes: float, clients: int, every: float, warmup: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="lbaas-bench-memory-") as tmp:
        logs = Path(tmp)
        async with running_device(logs) as device, isolated() as isolation:
            api = Api(api_env(isolation), logs)
            agent = Agent(isolation.agent_env(log_level="WARNING"), logs, "bench-memory-agent")
            async with (
                running(api, agent),
                authenticated(api.url, timeout=LONG_POLL_S + 10) as http,
            ):
                api.start()
                agent.start()
                await api.wait_ready("/readyz")
                registered = await LbaasClient(http).create_device(**device.registration())
                assert api.popen and agent.popen and device.popen
                pids = {
                    "lbaas-api": api.popen.pid,
                    "lbaas-agent": agent.popen.pid,
                    "lbaas-device": device.popen.pid,
                }
                run = await steady_load(
                    http,
                    registered["id"],
                    pids,
                    seconds=minutes * 60,
                    clients=clients,
                    every=every,
                )
    return {
        "minutes": minutes,
        "clients": clients,
        "warmup_s": warmup * 60,
        **run,
        "summary": summary(run["samples"], list(pids), warmup * 60),
    }


def print_table(report: dict[str, Any]) -> None:
    print(
        f"{report['cycles']} load balancer lives (create, update, delete) in "
        f"{report['minutes']:g} min with {report['clients']} clients"
    )
    heads = f"{'first min KiB':>15}{'last min KiB':>14}{'change':>9}{'peak KiB':>10}"
    print(f"{'process':<14}{heads}  met")
    for row in report["summary"]:
        print(
            f"{row['process']:<14}{row['first_minute_kib']:>15.0f}{row['last_minute_kib']:>14.0f}"
            f"{row['change']:>+9.1%}{row['peak_kib']:>10}  {'yes' if row['met'] else 'NO'}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=1.0, help="minutes left out first")
    args = parser.parse_args()
    result = asyncio.run(main(args.minutes, args.clients, args.every, args.warmup))
    print_table(result)
    out = Path("bench-results")
    out.mkdir(exist_ok=True)
    (out / "memory.json").write_text(json.dumps(result, indent=2))
    print(f"written to {out / 'memory.json'}")
