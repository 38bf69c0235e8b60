"""``make bench``: the floor of the service's own parts and the service, side by side in one run.

Starts its own database, vhost and prefix, an ``lbaas-api`` and an ``lbaas-agent`` with the
``noop`` driver (real processes, real PostgreSQL and RabbitMQ), and measures in this order:

- the floor (:mod:`bench.floor`): bare INSERT+COMMIT and publish+confirm, and the round trip;
- one client: ``POST /loadbalancers`` p50 and p99 (``GET /healthz`` as the HTTP baseline), and
  POST → ``ACTIVE`` learned by long poll (``?wait_for=ACTIVE``);
- busy clients (1, 16 and 64 by default), each POSTing and long-polling for ``--seconds``:
  accepted/s, end-to-end load balancers/s (all ``ACTIVE``, over the time of the last), POST p50
  and p99, errors, and the CPU time per load balancer of the API, the agent, PostgreSQL,
  RabbitMQ and the benchmark's own clients (what the machine's two cores are spent on);
- the accept path with one API process, then two (a second replica on the same database and
  vhost, started before the first measure so that its start-up is in neither, the clients
  alternating between them).

It prints a table of each measure against its target and the Octavia 19 reference (measured
with the same client loop on this machine kind, noop drivers), writes
``bench-results/<UTC time>.json`` and draws ``latency-cdf.png`` and ``throughput.png`` into
``--plots`` (``docs/bench``, which the README shows). The machine is shared and noisy: targets
are ratios to the floor measured in the same run.

    python -m bench.run [--samples 200] [--seconds 30] [--clients 1,16,64] [--plots docs/bench]
"""

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench import floor
from bench.latency import percentiles_ms
from tests.support.client import ADMIN_TOKEN, LbaasClient, authenticated
from tests.support.stack import Agent, Api, Isolation, Process, isolated, running

OCTAVIA = {
    "post_p50_ms": 34.3,
    "post_to_active_p50_ms": 493.0,
    "accepted_per_s_16": 25.2,
    "end_to_end_per_s_16": 2.17,
    "post_p50_ms_16": 644.0,
}
"""Octavia 19.0.0, noop drivers, gunicorn 2x4 threads, MariaDB: the same client loop."""
LBS = "/v2/lbaas/loadbalancers"
CREATE = {"loadbalancer": {"provider": "noop"}}
LONG_POLL_S = 60
LOOPS_PER_CLIENT = 8
END_TO_END_16 = "16 clients: end-to-end LB/s"
CPU_PARTS = ("api", "agent", "postgres", "rabbitmq", "bench", "all")
"""Where the CPU of a load balancer goes (``bench`` is this process's clients)."""


@dataclass
class Clients:
    """What busy clients saw: POST timings, when each load balancer turned ACTIVE, errors."""

    started: float = field(default_factory=time.perf_counter)
    posts: list[float] = field(default_factory=list)
    active_at: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def report(self, clients: int, seconds: float) -> dict[str, Any]:
        last = max(self.active_at, default=self.started) - self.started
        return {
            "clients": clients,
            "seconds": seconds,
            "accepted": len(self.posts),
            "accepted_per_s": len(self.posts) / seconds,
            "active": len(self.active_at),
            "end_to_end_per_s": len(self.active_at) / last if last else 0.0,
            "errors": len(self.errors),
            "first_errors": self.errors[:5],
            "post": percentiles_ms(self.posts) if self.posts else None,
        }


def api_env(isolation: Isolation) -> dict[str, str]:
    """An API's environment with no rate limit nor long-poll cap in the benchmark's way."""
    return isolation.api_env(
        log_level="WARNING", rate_limit=1_000_000, rate_burst=1_000_000, max_waits_per_token=10_000
    )


async def _create(http: httpx.AsyncClient) -> str:
    response = await http.post(LBS, json=CREATE)
    if response.status_code != 202:
        raise AssertionError(f"POST answered {response.status_code}: {response.text[:200]}")
    lb_id: str = response.json()["loadbalancer"]["id"]
    return lb_id


async def until_active(http: httpx.AsyncClient, lb_id: str) -> None:
    """One long poll; ``ACTIVE`` or a failure."""
    response = await http.get(
        f"{LBS}/{lb_id}", params={"wait_for": "ACTIVE", "timeout": LONG_POLL_S}
    )
    status = response.json()["loadbalancer"]["provisioning_status"]
    if response.status_code != 200 or status != "ACTIVE":
        raise AssertionError(f"{lb_id}: {response.status_code} {status}")


async def one_client(http: httpx.AsyncClient, samples: int) -> dict[str, Any]:
    healthz, post, to_active = [], [], []
    for _ in range(samples):
        start = time.perf_counter()
        await http.get("/healthz")
        healthz.append(time.perf_counter() - start)
        start = time.perf_counter()
        lb_id = await _create(http)
        post.append(time.perf_counter() - start)
        await until_active(http, lb_id)
        to_active.append(time.perf_counter() - start)
    return {
        "healthz": percentiles_ms(healthz),
        "post": percentiles_ms(post),
        "post_to_active": percentiles_ms(to_active),
        "samples": {"post_s": post, "post_to_active_s": to_active},
    }


async def busy_clients(
    urls: Sequence[str], clients: int, seconds: float, *, wait: bool
) -> dict[str, Any]:
    """``clients`` loops for ``seconds``, spread over the APIs at ``urls``; each waits for its
    load balancer to be ACTIVE before the next when ``wait``."""
    async with http_clients(urls, clients) as https:
        return await _loops(https, clients, seconds, wait=wait)


@contextlib.asynccontextmanager
async def http_clients(urls: Sequence[str], loops: int) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Enough HTTP clients (spread over the APIs at ``urls``) for ``loops`` client loops, each
    to serve :data:`LOOPS_PER_CLIENT` of them (loop ``i`` takes client ``i % len``).

    The cost of an httpx pool grows with its connections (one pool of 64 took 20 ms of this
    process's CPU per load balancer, 8 pools of 8 took 4 ms), and the benchmark must not
    measure itself.
    """
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                authenticated(
                    urls[i % len(urls)],
                    timeout=LONG_POLL_S + 10,
                    limits=httpx.Limits(max_connections=2 * LOOPS_PER_CLIENT),
                )
            )
            for i in range(-(-loops // LOOPS_PER_CLIENT))
        ]


async def _loops(
    https: Sequence[httpx.AsyncClient], clients: int, seconds: float, *, wait: bool
) -> dict[str, Any]:
    seen = Clients()
    ends = time.monotonic() + seconds

    async def loop(http: httpx.AsyncClient) -> None:
        while time.monotonic() < ends:
            start = time.perf_counter()
            try:
                lb_id = await _create(http)
                seen.posts.append(time.perf_counter() - start)
                if wait:
                    await until_active(http, lb_id)
                    seen.active_at.append(time.perf_counter())
            except (AssertionError, httpx.HTTPError) as exc:
                seen.errors.append(str(exc) or type(exc).__name__)

    await asyncio.gather(*(loop(https[i % len(https)]) for i in range(clients)))
    return seen.report(clients, seconds)


def cpu_seconds(process: Process) -> float:
    """User and system CPU time of a running process so far (Linux ``/proc``)."""
    assert process.popen is not None
    return _cpu_of(process.popen.pid)


def _cpu_of(pid: int | str) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVERS = {"postgres": "postgres", "rabbitmq": "beam.smp"}
"""The machine's servers, by the name their processes run under."""


def servers_cpu_seconds() -> dict[str, float]:
    """CPU time so far of every process of each of :data:`SERVERS` (all their backends and
    schedulers; on this machine they serve the benchmark alone)."""
    totals = dict.fromkeys(SERVERS, 0.0)
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            name = Path(f"/proc/{pid}/comm").read_text().strip()
            for server, process_name in SERVERS.items():
                if name == process_name:
                    totals[server] += _cpu_of(pid)
    return totals


async def busy_with_cpu(clients: int, seconds: float, api: Api, agent: Agent) -> dict[str, Any]:
    """:func:`busy_clients` waiting for ACTIVE, with the CPU time per load balancer made
    ACTIVE of the API, the agent, the servers and this benchmark's own clients: what the
    machine's noise moves least, and where its two cores go."""

    def spent() -> dict[str, float]:
        return {
            "api": cpu_seconds(api),
            "agent": cpu_seconds(agent),
            **servers_cpu_seconds(),
            "bench": time.process_time(),
        }

    before = spent()
    row = await busy_clients([api.url], clients, seconds, wait=True)
    after = spent()
    active = max(row["active"], 1)
    for name in before:
        row[f"{name}_cpu_ms_per_lb"] = 1000 * (after[name] - before[name]) / active
    return row


async def measure_service(
    isolation: Isolation, logs: Path, samples: int, seconds: float, counts: Sequence[int]
) -> dict[str, Any]:
    env = api_env(isolation)
    first, second = Api(env, logs), Api(env, logs)
    agent = Agent(isolation.agent_env(log_level="WARNING"), logs, "bench-agent")
    async with running(first, second, agent), authenticated(first.url, timeout=30) as http:
        first.start()
        agent.start()
        await first.wait_ready("/readyz")
        await agent.wait_announced(first.url, ADMIN_TOKEN, ("noop",))
        await LbaasClient(http).create_device("noop", cidr="10.128.0.0/12", capacity=1_000_000)
        await one_client(http, 20)  # warm-up
        report: dict[str, Any] = {"one_client": await one_client(http, samples)}
        report["busy"] = [await busy_with_cpu(n, seconds, first, agent) for n in counts]
        second.start()  # running, idle, during the one-process measure: both pay its upkeep
        await second.wait_ready("/readyz")
        accept_seconds = min(seconds, 15.0)
        report["accept_1_process"] = await busy_clients([first.url], 16, accept_seconds, wait=False)
        report["accept_2_processes"] = await busy_clients(
            [first.url, second.url], 16, accept_seconds, wait=False
        )
    return report


def targets(floor_report: dict[str, Any], service: dict[str, Any]) -> list[dict[str, Any]]:
    """Each measure against its target: ratios to the floor of the same run."""
    one = service["one_client"]
    busy = {row["clients"]: row for row in service["busy"]}
    accept_floor = floor_report["accept"]["p50_ms"]
    round_trip_floor = floor_report["round_trip"]["p50_ms"]
    round_trip_rate = floor_report["round_trip_concurrent"]["per_s"]
    rows = [
        _row(
            "POST p50, one client (ms)",
            one["post"]["p50_ms"],
            3 * accept_floor,
            "<=",
            f"3x accept floor {accept_floor:.2f}",
            OCTAVIA["post_p50_ms"],
        ),
        _row(
            "POST -> ACTIVE p50, long poll (ms)",
            one["post_to_active"]["p50_ms"],
            3 * round_trip_floor,
            "<=",
            f"3x round-trip floor {round_trip_floor:.2f}",
            OCTAVIA["post_to_active_p50_ms"],
        ),
    ]
    if 16 in busy:
        row = busy[16]
        rows += [
            _row(
                END_TO_END_16,
                row["end_to_end_per_s"],
                0.5 * round_trip_rate,
                ">=",
                f"50% of round-trip floor {round_trip_rate:.0f}/s",
                OCTAVIA["end_to_end_per_s_16"],
            ),
            _row(
                "16 clients: POST p99 (ms)",
                row["post"]["p99_ms"],
                100.0,
                "<=",
                "100 ms",
                OCTAVIA["post_p50_ms_16"],
            ),
        ]
    if 64 in busy:
        rows.append(_row("64 clients: errors", busy[64]["errors"], 0, "<=", "none", None))
    one_process = service["accept_1_process"]["accepted_per_s"]
    rows.append(
        _row(
            "accept/s, 2 API processes over 1",
            service["accept_2_processes"]["accepted_per_s"] / one_process,
            1.0,
            ">",
            f"1 process {one_process:.0f}/s",
            None,
        )
    )
    return rows


def _row(
    measure: str, value: float, target: float, sense: str, basis: str, octavia: float | None
) -> dict[str, Any]:
    met = {"<=": value <= target, ">=": value >= target, ">": value > target}[sense]
    return {
        "measure": measure,
        "value": value,
        "target": target,
        "sense": sense,
        "basis": basis,
        "octavia": octavia,
        "met": met,
    }


def print_report(
    floor_report: dict[str, Any], service: dict[str, Any], rows: list[dict[str, Any]]
) -> None:
    floor.print_table(floor_report)
    print(
        f"\n{'busy clients':<14}{'accepted/s':>12}{'LB/s':>9}{'POST p50':>10}"
        f"{'POST p99':>10}{'errors':>8}"
    )
    for row in service["busy"]:
        post = row["post"] or {"p50_ms": 0.0, "p99_ms": 0.0}
        print(
            f"{row['clients']:<14}{row['accepted_per_s']:>12.1f}{row['end_to_end_per_s']:>9.1f}"
            f"{post['p50_ms']:>10.1f}{post['p99_ms']:>10.1f}{row['errors']:>8}"
        )
    print(f"\nCPU ms per load balancer{'':<4}" + "".join(f"{name:>10}" for name in CPU_PARTS))
    for row in service["busy"]:
        parts = [row[f"{name}_cpu_ms_per_lb"] for name in CPU_PARTS[:-1]]
        print(
            f"{row['clients']:>3} clients{'':<18}"
            + "".join(f"{part:>10.2f}" for part in [*parts, sum(parts)])
        )
    for row in rows:
        if row["measure"] == END_TO_END_16:
            cores = os.cpu_count() or 1
            print(
                f"(at the 16-client target of {row['target']:.0f} LB/s, {cores} cores give "
                f"{1000 * cores / row['target']:.2f} ms of CPU per load balancer in all)"
            )
    print(f"\n{'measure':<38}{'value':>10}{'target':>10}  {'met':<5}{'Octavia':>9}  basis")
    for row in rows:
        octavia = f"{row['octavia']:>9.1f}" if row["octavia"] is not None else f"{'':>9}"
        print(
            f"{row['measure']:<38}{row['value']:>10.2f}{row['sense']:>3}{row['target']:>7.2f}  "
            f"{'yes' if row['met'] else 'NO':<5}{octavia}  {row['basis']}"
        )


def draw(service: dict[str, Any], floor_report: dict[str, Any], folder: Path) -> list[Path]:
    """Latency CDFs of one client, and throughput against the number of clients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    samples = service["one_client"]["samples"]
    figure, axes = plt.subplots(figsize=(7, 4))
    for key, label in (("post_s", "POST (202)"), ("post_to_active_s", "POST -> ACTIVE, long poll")):
        ordered = sorted(value * 1000 for value in samples[key])
        axes.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=label)
    for key, label, style in (
        ("accept", "floor: accept p50", ":"),
        ("round_trip", "floor: round trip p50", "--"),
    ):
        axes.axvline(floor_report[key]["p50_ms"], linestyle=style, color="grey", label=label)
    axes.set(xlabel="ms", ylabel="fraction of requests", title="One client: latency CDF")
    axes.legend()
    cdf = folder / "latency-cdf.png"
    figure.savefig(cdf, dpi=100, bbox_inches="tight")
    plt.close(figure)

    figure, axes = plt.subplots(figsize=(7, 4))
    counts = [row["clients"] for row in service["busy"]]
    axes.plot(counts, [row["accepted_per_s"] for row in service["busy"]], "o-", label="accepted/s")
    axes.plot(
        counts,
        [row["end_to_end_per_s"] for row in service["busy"]],
        "o-",
        label="ACTIVE/s (end to end)",
    )
    axes.axhline(
        floor_report["round_trip_concurrent"]["per_s"],
        linestyle="--",
        color="grey",
        label="floor: round trips/s",
    )
    axes.set(
        xscale="log",
        xlabel="busy clients",
        ylabel="load balancers/s",
        title="Throughput against clients",
    )
    axes.legend()
    throughput = folder / "throughput.png"
    figure.savefig(throughput, dpi=100, bbox_inches="tight")
    plt.close(figure)
    return [cdf, throughput]


async def main(samples: int, seconds: float, counts: Sequence[int]) -> dict[str, Any]:
    logs = Path(tempfile.mkdtemp(prefix="lbaas-bench-"))
    async with isolated() as isolation:
        floor_report = await floor.measure(isolation, samples, 16, min(seconds, 10.0))
        service = await measure_service(isolation, logs, samples, seconds, counts)
    return {
        "taken_at": datetime.now(UTC).isoformat(),
        "floor": floor_report,
        "service": service,
        "targets": targets(floor_report, service),
        "octavia_reference": OCTAVIA,
        "logs": str(logs),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", default="1,16,64", help="busy-client counts, comma-separated")
    parser.add_argument("--plots", type=Path, default=Path("docs/bench"))
    args = parser.parse_args()
    counts = [int(count) for count in args.clients.split(",")]
    report = asyncio.run(main(args.samples, args.seconds, counts))
    out = Path("bench-results") / f"{datetime.now(UTC):%Y-%m-%dT%H%M%SZ}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print_report(report["floor"], report["service"], report["targets"])
    for path in draw(report["service"], report["floor"], args.plots):
        print(f"drawn {path}")
    print(f"written to {out}")
