"""Scale of state: the API's reads with many load balancers in the database, and big trees.

Starts its own stack (``noop`` driver), creates one load balancer with a listener, a pool and
``--members`` members through the API, then clones it in SQL until the database holds
``--loadbalancers`` of them (every id derived from the template's and the copy's number, so
that the copies' references hold; VIPs from 10.129.0.0 up). Then it measures, through the
API: the first page of the list (``limit=100``), a filtered list (by name), the status tree of
a load balancer of 1,000 members, and the single-call create of that 1,000-member tree until
it is ``ACTIVE``. Prints a table against the targets and writes ``bench-results/state.json``.

    python -m bench.state [--loadbalancers 10000] [--members 10] [--samples 200]
"""

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.latency import percentiles_ms
from bench.run import api_env
from tests.support.client import ADMIN_TOKEN, LbaasClient, authenticated
from tests.support.stack import Agent, Api, Isolation, isolated, running

LBS = "/v2/lbaas/loadbalancers"
CLONED = ("loadbalancers", "vip_ports", "pools", "listeners", "members", "healthmonitors")
"""In the order their references need."""
REFERENCES = {"id", "loadbalancer_id", "pool_id", "default_pool_id", "listener_id"}
ADDRESSES = {("loadbalancers", "vip_address"), ("vip_ports", "ip_address")}
FIRST_CLONE_VIP = "10.129.0.0"
BIG_TREE = 1000
TARGETS_MS = {"list_page": 50.0, "list_filtered": 50.0, "status_tree_1000": 200.0}


def tree(members: int, first_octet: int = 1) -> dict[str, Any]:
    """A listener and its pool of ``members`` members, in one body."""
    return {
        "provider": "noop",
        "name": "state",
        "listeners": [
            {
                "protocol": "HTTP",
                "protocol_port": 80,
                "default_pool": {
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [
                        {
                            "address": f"127.{first_octet}.{i // 250}.{i % 250 + 1}",
                            "protocol_port": 80,
                        }
                        for i in range(members)
                    ],
                },
            }
        ],
    }


async def _copies(db: asyncpg.Connection, table: str, template: str, count: int) -> None:
    """``count`` copies of the template's rows of ``table``, in one statement."""
    columns = await db.fetch(
        "SELECT column_name, udt_name FROM information_schema.columns"
        " WHERE table_name = $1 ORDER BY ordinal_position",
        table,
    )
    values = []
    for column in columns:
        name, kind = column["column_name"], column["udt_name"]
        if name in REFERENCES:
            values.append(f"md5({name}::text || g::text)::uuid")
        elif (table, name) in ADDRESSES:
            values.append(f"host(inet '{FIRST_CLONE_VIP}' + g)::{kind}")
        elif name == "name":
            values.append("name || '-' || g")
        else:
            values.append(name)
    key = "id" if table == "loadbalancers" else "loadbalancer_id"
    names = ", ".join(column["column_name"] for column in columns)
    await db.execute(
        f"INSERT INTO {table} ({names}) SELECT {', '.join(values)}"
        f" FROM {table}, generate_series(1, $2) AS g WHERE {key} = $1::uuid",
        template,
        count,
    )


async def seed(isolation: Isolation, template: str, device_id: str, count: int) -> float:
    """Clone the template ``count`` times; seconds it took."""
    started = time.perf_counter()
    db = await isolation.db()
    try:
        async with db.transaction():
            for table in CLONED:
                await _copies(db, table, template, count)
            await db.execute(
                "UPDATE devices SET loadbalancer_count = loadbalancer_count + $2 WHERE id = $1",
                device_id,
                count,
            )
        await db.execute("ANALYZE")
    finally:
        await db.close()
    return time.perf_counter() - started


async def _timed(call: Callable[[], Awaitable[httpx.Response]], samples: int) -> dict[str, Any]:
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        response = await call()
        timings.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text[:200]
    return percentiles_ms(timings)


async def main(loadbalancers: int, members: int, samples: int) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="lbaas-bench-state-"))
    async with isolated() as isolation:
        api = Api(api_env(isolation), logs)
        agent = Agent(isolation.agent_env(log_level="WARNING"), logs, "bench-state-agent")
        async with running(api, agent), authenticated(api.url, timeout=120) as http:
            api.start()
            agent.start()
            await api.wait_ready("/readyz")
            await agent.wait_announced(api.url, ADMIN_TOKEN, ("noop",))
            client = LbaasClient(http)
            device = await client.create_device("noop", cidr="10.128.0.0/12", capacity=1_000_000)
            created = await http.post(LBS, json={"loadbalancer": tree(members)})
            assert created.status_code == 202, created.text
            template = created.json()["loadbalancer"]["id"]
            await client.wait_lb(template, ("ACTIVE",))
            seeded = await seed(isolation, template, device["id"], loadbalancers - 1)

            started = time.perf_counter()
            big = await http.post(LBS, json={"loadbalancer": tree(BIG_TREE, first_octet=2)})
            posted = time.perf_counter() - started
            assert big.status_code == 202, big.text[:300]
            big_id = big.json()["loadbalancer"]["id"]
            await client.wait_lb(big_id, ("ACTIVE",), timeout=120)
            to_active = time.perf_counter() - started

            report = {
                "loadbalancers": loadbalancers,
                "members_each": members,
                "seed_s": seeded,
                "big_tree": {
                    "members": BIG_TREE,
                    "post_ms": posted * 1000,
                    "to_active_ms": to_active * 1000,
                },
                "list_page": await _timed(lambda: http.get(LBS, params={"limit": 100}), samples),
                "list_filtered": await _timed(
                    lambda: http.get(LBS, params={"name": "state-5000", "limit": 100}), samples
                ),
                "status_tree_1000": await _timed(
                    lambda: http.get(f"{LBS}/{big_id}/status"), max(samples // 4, 10)
                ),
            }
    return report


def print_table(report: dict[str, Any]) -> None:
    print(
        f"{report['loadbalancers']} load balancers x {report['members_each']} members "
        f"(seeded in {report['seed_s']:.1f} s)"
    )
    print(f"{'measure':<34}{'n':>6}{'p50 ms':>9}{'p99 ms':>9}{'target':>9}  met")
    for key, label in (
        ("list_page", "list, limit=100"),
        ("list_filtered", "list filtered by name"),
        ("status_tree_1000", "status tree, 1,000 members"),
    ):
        row, target = report[key], TARGETS_MS[key]
        met = "yes" if row["p99_ms"] <= target else "NO"
        print(
            f"{label:<34}{row['n']:>6}{row['p50_ms']:>9.1f}{row['p99_ms']:>9.1f}"
            f"{target:>9.0f}  {met}"
        )
    big = report["big_tree"]
    print(
        f"single-call create of {big['members']} members: POST {big['post_ms']:.0f} ms, "
        f"ACTIVE after {big['to_active_ms']:.0f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loadbalancers", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench-results/state.json"))
    args = parser.parse_args()
    result = asyncio.run(main(args.loadbalancers, args.members, args.samples))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"\nwritten to {args.out}")
