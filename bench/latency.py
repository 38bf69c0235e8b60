"""Benchmark: POST latency, POST → ACTIVE with the noop driver, and drain rate of busy clients.

Starts its own database, queue prefix, ``lbaas-api`` and ``lbaas-agent`` (real
processes, real PostgreSQL and RabbitMQ), measures, prints a table and writes
``bench-results/latency.json``. The machine is shared and noisy: the report
gives medians and ratios to baselines measured in the same run (``GET
/healthz`` for the HTTP path) and to the Octavia 19 reference on this machine
kind (944 ms p50 POST → ACTIVE, 1.65 load balancers/s for 16 busy clients).

    python -m bench.latency [--samples 200] [--clients 16] [--per-client 25]
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

from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Agent, Api, isolated, running

OCTAVIA_POST_TO_ACTIVE_P50_MS = 944.0
OCTAVIA_DRAIN_PER_S = 1.65
POLL_INTERVAL = 0.002
DRAIN_POLL_INTERVAL = 0.05
"""Busy clients poll like real ones, not in a tight loop that would measure only the GETs."""


def percentiles_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": statistics.median(ordered) * 1000,
        "p90_ms": ordered[int(len(ordered) * 0.9) - 1] * 1000,
        "p99_ms": ordered[max(int(len(ordered) * 0.99) - 1, 0)] * 1000,
    }


async def _until_active(
    client: LbaasClient, lb_id: str, deadline: float, interval: float = POLL_INTERVAL
) -> None:
    while time.monotonic() < deadline:
        lb = (await client.get_lb(lb_id)).json()["loadbalancer"]
        if lb["provisioning_status"] == "ACTIVE":
            return
        assert lb["provisioning_status"] != "ERROR", lb
        await asyncio.sleep(interval)
    raise TimeoutError(f"{lb_id} not ACTIVE in time")


async def measure_sequential(
    client: LbaasClient, device: dict[str, Any], samples: int
) -> dict[str, Any]:
    healthz, post, to_active = [], [], []
    for _ in range(samples):
        start = time.perf_counter()
        await client.http.get("/healthz")
        healthz.append(time.perf_counter() - start)

        start = time.perf_counter()
        response = await client.create_lb(device)
        post.append(time.perf_counter() - start)
        assert response.status_code == 202, response.text
        await _until_active(client, response.json()["loadbalancer"]["id"], time.monotonic() + 30)
        to_active.append(time.perf_counter() - start)
    return {
        "healthz": percentiles_ms(healthz),
        "post": percentiles_ms(post),
        "post_to_active": percentiles_ms(to_active),
    }


async def measure_drain(
    client: LbaasClient, device: dict[str, Any], clients: int, per_client: int
) -> dict[str, Any]:
    async def busy_client() -> None:
        for _ in range(per_client):
            response = await client.create_lb(device)
            assert response.status_code == 202, response.text
            lb_id = response.json()["loadbalancer"]["id"]
            await _until_active(client, lb_id, time.monotonic() + 120, DRAIN_POLL_INTERVAL)

    start = time.perf_counter()
    await asyncio.gather(*(busy_client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    total = clients * per_client
    return {
        "clients": clients,
        "loadbalancers": total,
        "seconds": elapsed,
        "per_s": total / elapsed,
    }


async def main(samples: int, clients: int, per_client: int) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="lbaas-bench-"))
    async with isolated() as isolation:
        unlimited = {"rate_limit": 1_000_000, "rate_burst": 1_000_000}
        api = Api(isolation.api_env(log_level="WARNING", **unlimited), logs)
        agent = Agent(isolation.agent_env(log_level="WARNING"), logs, "bench-agent")
        limits = httpx.Limits(max_connections=clients * 2)
        async with (
            running(api, agent),
            authenticated(api.url, timeout=30, limits=limits) as http,
        ):
            api.start()
            agent.start()
            await api.wait_ready("/readyz")
            client = LbaasClient(http)
            device = await client.create_device("noop", cidr="10.128.0.0/16", capacity=100_000)
            await measure_sequential(client, device, 20)  # warm-up
            sequential = await measure_sequential(client, device, samples)
            drain = await measure_drain(client, device, clients, per_client)
    p50 = sequential["post_to_active"]["p50_ms"]
    report = {
        **sequential,
        "drain": drain,
        "ratios": {
            "post_p50_over_healthz_p50": sequential["post"]["p50_ms"]
            / sequential["healthz"]["p50_ms"],
            "octavia_post_to_active_p50_over_ours": OCTAVIA_POST_TO_ACTIVE_P50_MS / p50,
            "drain_rate_over_octavia": drain["per_s"] / OCTAVIA_DRAIN_PER_S,
        },
    }
    return report


def print_table(report: dict[str, Any]) -> None:
    print(f"{'measure':<34}{'n':>6}{'p50 ms':>10}{'p90 ms':>10}{'p99 ms':>10}")
    for key, label in (
        ("healthz", "GET /healthz (baseline)"),
        ("post", "POST /loadbalancers (202)"),
        ("post_to_active", "POST → ACTIVE (noop)"),
    ):
        row = report[key]
        print(
            f"{label:<34}{row['n']:>6}{row['p50_ms']:>10.1f}{row['p90_ms']:>10.1f}{row['p99_ms']:>10.1f}"
        )
    drain = report["drain"]
    print(
        f"\n{drain['clients']} busy clients: {drain['loadbalancers']} load balancers ACTIVE in "
        f"{drain['seconds']:.1f} s = {drain['per_s']:.1f}/s"
    )
    for name, value in report["ratios"].items():
        print(f"{name:<44}{value:>8.1f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--per-client", type=int, default=25)
    parser.add_argument("--out", type=Path, default=Path("bench-results/latency.json"))
    args = parser.parse_args()
    report = asyncio.run(main(args.samples, args.clients, args.per_client))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_table(report)
    print(f"\nwritten to {args.out}")
