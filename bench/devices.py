"""Device parallelism: many slow devices are worked on at once, and one device one at a time.

Starts its own stack with ``--devices`` ``sim`` appliances whose every apply takes
``--latency`` seconds, one load balancer on each. Then:

- across devices: one client per load balancer makes ``--updates`` updates in a row (each
  waits, by long poll, for the load balancer to be ``ACTIVE`` again). Ideal is
  ``updates * latency`` for the whole run, as if every device worked all the time; the
  efficiency is ideal over measured (target ≥ 80%);
- on one device: ``--updates`` load balancers of one appliance updated at once; the device
  applies one at a time, so it takes at least ``updates * latency`` (measured over that).

Prints a table and writes ``bench-results/devices.json``.

    python -m bench.devices [--devices 50] [--latency 0.2] [--updates 10]
"""

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.run import LONG_POLL_S, api_env, http_clients, until_active
from tests.support.client import ADMIN_TOKEN, LbaasClient, authenticated
from tests.support.stack import Agent, Api, isolated, running

LBS = "/v2/lbaas/loadbalancers"
TARGET_EFFICIENCY = 0.8


async def _update(http: httpx.AsyncClient, lb_id: str, name: str) -> None:
    response = await http.put(f"{LBS}/{lb_id}", json={"loadbalancer": {"name": name}})
    if response.status_code != 202:
        raise AssertionError(f"PUT {lb_id}: {response.status_code} {response.text[:200]}")


async def _loadbalancers(
    client: LbaasClient, latency: float, devices: int, per_device: int
) -> list[str]:
    """``per_device`` ACTIVE load balancers on each of ``devices`` new slow appliances."""
    made = []
    for index in range(devices):
        device = await client.create_device(
            "sim", url=f"sim://bench-{index}-{time.monotonic_ns()}?latency={latency}"
        )
        for _ in range(per_device):
            response = await client.create_lb(device)
            assert response.status_code == 202, response.text
            made.append(response.json()["loadbalancer"]["id"])
    await asyncio.gather(*(until_active(client.http, lb_id) for lb_id in made))
    return made


async def across_devices(
    client: LbaasClient, latency: float, devices: int, updates: int
) -> dict[str, Any]:
    lbs = await _loadbalancers(client, latency, devices, 1)

    async def one_client(http: httpx.AsyncClient, lb_id: str) -> None:
        for number in range(updates):
            await _update(http, lb_id, f"across-{number}")
            await until_active(http, lb_id)

    async with http_clients([str(client.http.base_url)], len(lbs)) as https:
        started = time.perf_counter()
        await asyncio.gather(
            *(one_client(https[i % len(https)], lb_id) for i, lb_id in enumerate(lbs))
        )
        elapsed = time.perf_counter() - started
    ideal = updates * latency
    return {
        "devices": devices,
        "updates": devices * updates,
        "seconds": elapsed,
        "ideal_seconds": ideal,
        "efficiency": ideal / elapsed,
    }


async def on_one_device(client: LbaasClient, latency: float, updates: int) -> dict[str, Any]:
    lbs = await _loadbalancers(client, latency, 1, updates)
    started = time.perf_counter()
    await asyncio.gather(*(_update(client.http, lb_id, "one-device") for lb_id in lbs))
    await asyncio.gather(*(until_active(client.http, lb_id) for lb_id in lbs))
    elapsed = time.perf_counter() - started
    serial = updates * latency
    return {
        "updates": updates,
        "seconds": elapsed,
        "serial_seconds": serial,
        "over_serial": elapsed / serial,
    }


async def main(devices: int, latency: float, updates: int) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="lbaas-bench-devices-"))
    async with isolated() as isolation:
        api = Api(api_env(isolation), logs)
        agent = Agent(isolation.agent_env(log_level="WARNING"), logs, "bench-devices-agent")
        limits = httpx.Limits(max_connections=devices * 2 + 10)
        async with (
            running(api, agent),
            authenticated(api.url, timeout=LONG_POLL_S + 10, limits=limits) as http,
        ):
            api.start()
            agent.start()
            await api.wait_ready("/readyz")
            await agent.wait_announced(api.url, ADMIN_TOKEN, ("sim",))
            client = LbaasClient(http)
            return {
                "latency_s": latency,
                "across_devices": await across_devices(client, latency, devices, updates),
                "one_device": await on_one_device(client, latency, updates),
            }


def print_table(report: dict[str, Any]) -> None:
    across, one = report["across_devices"], report["one_device"]
    met = "yes" if across["efficiency"] >= TARGET_EFFICIENCY else "NO"
    print(f"sim apply latency {report['latency_s']:g} s")
    print(
        f"{across['updates']} updates over {across['devices']} devices: {across['seconds']:.2f} s, "
        f"ideal {across['ideal_seconds']:.2f} s, efficiency {across['efficiency']:.0%} "
        f"(target {TARGET_EFFICIENCY:.0%}: {met})"
    )
    print(
        f"{one['updates']} updates on one device at once: {one['seconds']:.2f} s, "
        f"{one['over_serial']:.2f}x their serial time {one['serial_seconds']:.2f} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--updates", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench-results/devices.json"))
    args = parser.parse_args()
    result = asyncio.run(main(args.devices, args.latency, args.updates))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"\nwritten to {args.out}")
