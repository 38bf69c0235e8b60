"""The fault suite's harness: a whole deployment, a seeded workload, and the invariants
checked once the system is quiet again.

:class:`FaultStack` runs what an operator runs: several ``lbaas-api`` replicas, several
``lbaas-agent`` processes, ``sim`` appliances and a HAProxy device (``lbaas-device``),
against the isolation's database and broker (which may be private servers the scenario
stops). :class:`Workload` drives it like users: seeded clients that create load balancers
(with a listener, a pool and members in one call), update them, replace member sets, add
L7 policies and delete load balancers, each request sent to a replica in turn and sent
again to the next one when no answer came (POSTs with an ``Idempotency-Key``).

:func:`settle` waits until the system is quiet and checks, against the database, the
devices and every answer the clients got:

- every object a 202 was answered for is ``ACTIVE``, ``ERROR`` with a reason, or removed
  (its delete, or its load balancer's, was accepted); none is missing, none is ``PENDING_*``;
- every device holds exactly what the database places on it: nothing it does not know
  (orphans, HAProxy processes and state folders included) and every ``ACTIVE`` load
  balancer at the database's generation, with the same objects;
- per load balancer, the generations each device applied only increase;
- no answer was a 5xx other than 503, and every refusal carried a problem body.

A :class:`Report` is printed and written to ``fault-results/<scenario>.json``.
"""

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import signal
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.client import ADMIN_TOKEN, LbaasClient, authenticated, random_cidr
from tests.support.haproxy import Device as HaproxyDevice
from tests.support.stack import Agent, Api, Isolation, eventually

API = "/v2/lbaas"
RESULTS_DIR = Path("fault-results")
PROBLEM = "application/problem+json"
TREE_TABLES = ("loadbalancers", "listeners", "pools", "members", "healthmonitors", "l7policies")
ATTEMPTS = 8
"""Times one request is sent (to the next replica each time) before it counts as unanswered."""
AFTER_FAULT = 5
"""Changes the workload has accepted after the fault ended when it stops."""
_APPLIED = re.compile(r"([0-9a-f-]{36}) generation (\d+): (applied|unchanged)")


@dataclass
class StackShape:
    apis: int = 2
    agents: int = 3
    sim_devices: int = 3
    haproxy_devices: int = 1
    sim_latency: float = 0.05
    pending_timeout: float = 30.0
    api_settings: dict[str, object] = field(default_factory=dict)
    agent_settings: dict[str, object] = field(default_factory=dict)


class FaultStack:
    """The processes of one deployment; any of them can be killed and started again."""

    def __init__(
        self,
        isolation: Isolation,
        log_dir: Path,
        sim_dir: Path,
        shape: StackShape,
        *,
        amqp_url: str | None = None,
        api_amqp_url: Callable[[int], str] | None = None,
        agent_amqp_url: Callable[[int], str] | None = None,
        database_url: str | None = None,
    ) -> None:
        """``amqp_url``: the services' broker URL(s), by default the isolation's;
        ``api_amqp_url``/``agent_amqp_url``: each replica's or agent's own, by index (through
        a proxy the scenario cuts)."""
        self.isolation = isolation
        self.shape = shape
        self.sim_dir = sim_dir
        self.run_id = uuid.uuid4().hex[:8]
        api_settings: dict[str, object] = {
            "outbox_interval": 0.2,
            "reaper_interval": 0.5,
            "device_sync_interval": 1.0,
            "publish_timeout": 2.0,
            "pending_timeout": shape.pending_timeout,
            "metrics_port": 0,
            "rate_limit": 10_000,
            "rate_burst": 10_000,
            **({"amqp_url": amqp_url} if amqp_url else {}),
            **({"database_url": database_url} if database_url else {}),
            **shape.api_settings,
        }
        self.apis = [
            Api(
                isolation.api_env(
                    **api_settings, **({"amqp_url": api_amqp_url(n)} if api_amqp_url else {})
                ),
                log_dir,
            )
            for n in range(shape.apis)
        ]
        self.agents = []
        for index in range(shape.agents):
            url = agent_amqp_url(index) if agent_amqp_url else amqp_url
            settings: dict[str, object] = {
                "sim_state_dir": sim_dir,
                "status_interval": 0.5,
                "orphan_grace": 1.0,
                **({"amqp_url": url} if url else {}),
                **shape.agent_settings,
            }
            self.agents.append(
                Agent(isolation.agent_env(**settings), log_dir, f"fault-{self.run_id}-{index}")
            )
        self.haproxy = [HaproxyDevice(log_dir) for _ in range(shape.haproxy_devices)]
        self.devices: list[dict[str, Any]] = []

    @property
    def api_urls(self) -> list[str]:
        return [api.url for api in self.apis]

    def sim_host(self, device: dict[str, Any]) -> str:
        return str(device["management_url"]).removeprefix("sim://").split("?")[0]

    async def start(self) -> None:
        for device in self.haproxy:
            device.start()
        for api in self.apis:
            api.start()
        for api in self.apis:
            await api.wait_ready("/readyz", timeout=60)
        for agent in self.agents:
            agent.start()
        for agent in self.agents:
            await agent.wait_announced(self.apis[0].url, ADMIN_TOKEN, timeout=60)
        for device in self.haproxy:
            await device.wait_ready()
        async with authenticated(self.apis[0].url, timeout=30) as http:
            client = LbaasClient(http)
            for index in range(self.shape.sim_devices):
                url = f"sim://fault-{self.run_id}-{index}?latency={self.shape.sim_latency}"
                self.devices.append(
                    await client.create_device("sim", url=url, cidr=random_cidr(), capacity=10_000)
                )
            for device in self.haproxy:
                self.devices.append(
                    await client.create_device(**device.registration(capacity=10_000))
                )

    async def stop(self, timeout: float = 30) -> None:
        """SIGTERM to every process at once; any that outlives ``timeout`` is killed and named
        (after everything, HAProxy devices included, is cleaned up)."""
        running = [p for p in [*self.agents, *self.apis] if p.running]
        for process in running:
            assert process.popen is not None
            process.popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        stuck = []
        for process in running:
            assert process.popen is not None
            try:
                await asyncio.to_thread(process.popen.wait, max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                stuck.append(process.log_path.name)
                process.kill()
        for device in self.haproxy:
            device.purge()
        assert not stuck, f"ignored SIGTERM for {timeout} s: {stuck}"

    async def restart_api(self, index: int) -> None:
        api = self.apis[index]
        if not api.running:
            api.start()
        await api.wait_ready("/healthz", timeout=60)


@asynccontextmanager
async def fault_stack(
    isolation: Isolation, log_dir: Path, sim_dir: Path, shape: StackShape, **options: Any
) -> AsyncIterator[FaultStack]:
    stack = FaultStack(isolation, log_dir, sim_dir, shape, **options)
    try:
        await stack.start()
        yield stack
    finally:
        await stack.stop()


@dataclass
class Answer:
    method: str
    path: str
    status: int | None
    """None: no replica answered."""
    content_type: str = ""
    detail: str = ""


@dataclass
class Tracked:
    """A load balancer a client got a 202 for, and what it knows of it."""

    id: str
    device_id: str
    listener_id: str
    pool_id: str
    deleted: bool = False
    """A delete of it was accepted."""
    maybe_deleted: bool = False
    """A delete of it was sent that no replica answered: it may have been accepted."""


class Workload:
    """Seeded clients, each a sequence of at most ``steps`` steps; ``stop`` ends them (a
    scenario stops them a few changes after its fault ended)."""

    def __init__(
        self,
        stack: FaultStack,
        seed: int,
        *,
        clients: int = 4,
        steps: int = 500,
        loadbalancers_per_client: int = 3,
    ) -> None:
        self.stack = stack
        self.seed = seed
        self.clients = clients
        self.steps = steps
        self.per_client = loadbalancers_per_client
        self.answers: list[Answer] = []
        self.tracked: dict[str, Tracked] = {}
        self.stop = asyncio.Event()
        self._turn = 0

    async def run(self) -> None:
        async with httpx.AsyncClient(headers={"X-Auth-Token": ADMIN_TOKEN}, timeout=15) as http:
            await asyncio.gather(
                *(
                    self._client(http, random.Random(f"{self.seed}-{n}"))
                    for n in range(self.clients)
                )
            )

    async def _client(self, http: httpx.AsyncClient, rng: random.Random) -> None:
        mine: list[Tracked] = []
        for _ in range(self.steps):
            if self.stop.is_set():
                return
            live = [lb for lb in mine if not lb.deleted]
            if len(live) < self.per_client or rng.random() < 0.1:
                created = await self._create(http, rng)
                if created is not None:
                    mine.append(created)
                continue
            lb = rng.choice(live)
            step = rng.choices(
                [self._update, self._members, self._l7, self._delete], weights=[3, 3, 2, 1]
            )[0]
            await step(http, rng, lb)
            await self._settled(http, lb)

    async def _create(self, http: httpx.AsyncClient, rng: random.Random) -> Tracked | None:
        device = rng.choice(self.stack.devices)
        body = {
            "name": "fault",
            "provider": device["driver"],
            "device_id": device["id"],
            "listeners": [
                {
                    "protocol": "HTTP",
                    "protocol_port": 8080,
                    "default_pool": {
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": _members(rng),
                    },
                }
            ],
        }
        response = await self.call(http, "POST", f"{API}/loadbalancers", {"loadbalancer": body})
        if response is None or response.status_code != 202:
            return None
        lb = response.json()["loadbalancer"]
        tracked = Tracked(lb["id"], device["id"], lb["listeners"][0]["id"], lb["pools"][0]["id"])
        self.tracked[tracked.id] = tracked
        await self._settled(http, tracked)
        return tracked

    async def _update(self, http: httpx.AsyncClient, rng: random.Random, lb: Tracked) -> None:
        body = {"listener": {"connection_limit": rng.randrange(100, 10_000)}}
        await self.call(http, "PUT", f"{API}/listeners/{lb.listener_id}", body)

    async def _members(self, http: httpx.AsyncClient, rng: random.Random, lb: Tracked) -> None:
        body = {"members": _members(rng)}
        await self.call(http, "PUT", f"{API}/pools/{lb.pool_id}/members", body)

    async def _l7(self, http: httpx.AsyncClient, rng: random.Random, lb: Tracked) -> None:
        rule = {"type": "PATH", "compare_type": "STARTS_WITH", "value": f"/p{rng.randrange(99)}"}
        body = {"l7policy": {"listener_id": lb.listener_id, "action": "REJECT", "rules": [rule]}}
        await self.call(http, "POST", f"{API}/l7policies", body)

    async def _delete(self, http: httpx.AsyncClient, rng: random.Random, lb: Tracked) -> None:
        before = len(self.answers)
        response = await self.call(http, "DELETE", f"{API}/loadbalancers/{lb.id}?cascade=true")
        if response is not None and response.status_code in (202, 204):
            lb.deleted = True
        elif any(answer.status is None for answer in self.answers[before:]):
            lb.maybe_deleted = True

    async def _settled(self, http: httpx.AsyncClient, lb: Tracked) -> None:
        """A long poll until the load balancer leaves PENDING_* (bounded; faults may hold it)."""
        await self.call(http, "GET", f"{API}/loadbalancers/{lb.id}?wait_for=ACTIVE&timeout=10")

    async def call(
        self, http: httpx.AsyncClient, method: str, path: str, body: object = None
    ) -> httpx.Response | None:
        """Sent to the next replica until one answers other than 503 (or ``ATTEMPTS`` ran out)."""
        headers = {"Idempotency-Key": uuid.uuid4().hex} if method == "POST" else {}
        response: httpx.Response | None = None
        for attempt in range(ATTEMPTS):
            url = self.stack.api_urls[self._turn % len(self.stack.api_urls)]
            self._turn += 1
            try:
                response = await http.request(method, url + path, json=body, headers=headers)
            except httpx.TransportError:
                self.answers.append(Answer(method, path, None))
                await asyncio.sleep(0.1 * (attempt + 1))  # backoff, not synchronisation
                continue
            self.answers.append(_answer(method, path, response))
            if response.status_code != 503:
                return response
            await asyncio.sleep(0.1 * (attempt + 1))
        return response


def _answer(method: str, path: str, response: httpx.Response) -> Answer:
    content_type = response.headers.get("content-type", "")
    detail = ""
    if response.status_code >= 400 and content_type == PROBLEM:
        detail = str(response.json().get("detail", ""))[:200]
    return Answer(method, path, response.status_code, content_type, detail)


def _members(rng: random.Random) -> list[dict[str, object]]:
    ports = rng.sample(range(20_000, 20_100), rng.randrange(1, 4))
    return [{"address": "127.0.0.1", "protocol_port": port} for port in sorted(ports)]


class PendingWatch:
    """Samples the database while a scenario runs: how long any load balancer stayed PENDING_*."""

    def __init__(self, isolation: Isolation, interval: float = 0.25) -> None:
        self._isolation = isolation
        self._interval = interval
        self._since: dict[str, float] = {}
        self.longest = 0.0

    async def run(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # the database may be the fault
                rows = await self._isolation.fetch(
                    "SELECT id::text AS id FROM loadbalancers "
                    "WHERE provisioning_status LIKE 'PENDING%'"
                )
                now = time.monotonic()
                pending = {row["id"] for row in rows}
                for lb in pending - self._since.keys():
                    self._since[lb] = now
                for lb in self._since.keys() - pending:
                    self.longest = max(self.longest, now - self._since.pop(lb))
                for since in self._since.values():
                    self.longest = max(self.longest, now - since)
            await asyncio.sleep(self._interval)


@asynccontextmanager
async def watching_pending(isolation: Isolation) -> AsyncIterator[PendingWatch]:
    watch = PendingWatch(isolation)
    task = asyncio.create_task(watch.run())
    try:
        yield watch
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@dataclass
class Report:
    scenario: str
    seed: int
    requests_accepted: int = 0
    requests_unanswered: int = 0
    objects_tracked: int = 0
    objects_converged: int = 0
    objects_lost: int = 0
    objects_pending: int = 0
    errors_without_reason: int = 0
    orphans_on_devices: int = 0
    missing_on_devices: int = 0
    generation_order_violations: int = 0
    server_errors: int = 0
    refusals_without_problem: int = 0
    longest_pending_s: float = 0.0
    converge_s: float = 0.0
    answers_by_status: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return (
            self.objects_lost
            + self.objects_pending
            + self.errors_without_reason
            + self.orphans_on_devices
            + self.missing_on_devices
            + self.generation_order_violations
            + self.server_errors
            + self.refusals_without_problem
        )

    def write(self) -> Path:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"{self.scenario}.json"
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    def table(self) -> str:
        rows = [
            ("requests accepted (2xx)", self.requests_accepted),
            ("requests no replica answered", self.requests_unanswered),
            ("load balancers accepted", self.objects_tracked),
            ("objects converged", self.objects_converged),
            ("objects lost (must be 0)", self.objects_lost),
            ("objects left PENDING_* (must be 0)", self.objects_pending),
            ("ERROR without a reason (must be 0)", self.errors_without_reason),
            ("orphans on devices (must be 0)", self.orphans_on_devices),
            ("missing or stale on devices (must be 0)", self.missing_on_devices),
            ("generation-order violations (must be 0)", self.generation_order_violations),
            ("5xx other than 503 (must be 0)", self.server_errors),
            ("refusals without a problem body (must be 0)", self.refusals_without_problem),
            ("longest PENDING_* (s)", f"{self.longest_pending_s:.2f}"),
            ("converged after the fault (s)", f"{self.converge_s:.2f}"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"fault scenario {self.scenario} (seed {self.seed})"]
        lines += [f"  {name:<{width}}  {value}" for name, value in rows]
        lines += [f"  fault: {fault}" for fault in self.faults]
        lines += [f"  problem: {problem}" for problem in self.problems[:20]]
        return "\n".join(lines)


@dataclass
class _State:
    """What the database and the devices hold, read once."""

    loadbalancers: dict[str, dict[str, Any]]
    pending: list[str]
    errors_without_reason: list[str]
    unpublished: int
    children: dict[str, dict[str, set[str]]]
    """Per load balancer: its listener, pool, member and L7 policy ids."""
    held: dict[str, dict[str, dict[str, Any]]]
    """Per device: each load balancer it holds, with ``generation`` and (sim) its objects."""
    strays: list[str]
    """HAProxy state folders or processes of no load balancer the device lists."""


async def _read_state(stack: FaultStack) -> _State:
    isolation = stack.isolation
    lbs = {
        row["id"]: dict(row)
        for row in await isolation.fetch(
            "SELECT id::text AS id, device_id::text AS device_id, generation, "
            "provisioning_status AS status FROM loadbalancers"
        )
    }
    pending: list[str] = []
    unexplained: list[str] = []
    for table in TREE_TABLES:
        for row in await isolation.fetch(
            f"SELECT id::text AS id, provisioning_status AS status, status_reason FROM {table} "
            "WHERE provisioning_status LIKE 'PENDING%' "
            "OR (provisioning_status = 'ERROR' AND coalesce(status_reason, '') = '')"
        ):
            (pending if row["status"].startswith("PENDING") else unexplained).append(
                f"{table[:-1]} {row['id']} {row['status']}"
            )
    unpublished = (
        await isolation.fetch("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")
    )[0]["n"]
    children: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for kind, query in (
        ("listeners", "SELECT loadbalancer_id::text AS lb, id::text AS id FROM listeners"),
        ("pools", "SELECT loadbalancer_id::text AS lb, id::text AS id FROM pools"),
        (
            "members",
            "SELECT p.loadbalancer_id::text AS lb, m.id::text AS id "
            "FROM members m JOIN pools p ON p.id = m.pool_id",
        ),
        (
            "l7policies",
            "SELECT l.loadbalancer_id::text AS lb, p.id::text AS id "
            "FROM l7policies p JOIN listeners l ON l.id = p.listener_id",
        ),
    ):
        for row in await isolation.fetch(query):
            children[row["lb"]][kind].add(row["id"])
    held: dict[str, dict[str, dict[str, Any]]] = {}
    strays: list[str] = []
    haproxy = iter(stack.haproxy)
    for device in stack.devices:
        if device["driver"] == "sim":
            held[device["id"]] = _sim_held(stack.sim_dir / stack.sim_host(device))
        else:
            process = next(haproxy)
            held[device["id"]], found = await _haproxy_held(process)
            strays += found
    return _State(lbs, pending, unexplained, unpublished, children, held, strays)


def _sim_held(root: Path) -> dict[str, dict[str, Any]]:
    held: dict[str, dict[str, Any]] = {}
    for path in (root / "loadbalancers").glob("*.json"):
        with contextlib.suppress(FileNotFoundError, ValueError):
            spec = json.loads(path.read_text())
            pools = spec.get("pools", [])
            held[spec["id"]] = {
                "generation": spec["generation"],
                "listeners": {listener["id"] for listener in spec.get("listeners", [])},
                "pools": {pool["id"] for pool in pools},
                "members": {m["id"] for pool in pools for m in pool.get("members", [])},
                "l7policies": {
                    p["id"]
                    for listener in spec.get("listeners", [])
                    for p in listener.get("l7policies", [])
                },
            }
    return held


async def _haproxy_held(device: HaproxyDevice) -> tuple[dict[str, dict[str, Any]], list[str]]:
    async with device.http() as http:
        listed = (await http.get("/v1/loadbalancers")).json()["loadbalancers"]
    held = {item["id"]: {"generation": item["generation"]} for item in listed}
    known = {uuid.UUID(lb).hex for lb in held}
    strays = []
    for folder in device.state_dir.iterdir() if device.state_dir.exists() else []:
        if folder.is_dir() and folder.name not in known:
            strays.append(f"HAProxy state folder {folder.name} of no load balancer listed")
    for name, pid in _haproxy_processes(device.state_dir):
        if name not in known:
            strays.append(f"HAProxy process {pid} of {name}, no load balancer listed")
    return held, strays


def _haproxy_processes(state_dir: Path) -> list[tuple[str, int]]:
    """(instance folder name, pid) of every HAProxy process running a config under
    ``state_dir``, whether or not its folder still exists."""
    found = []
    prefix = str(state_dir.resolve()) + "/"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if not argv or not Path(argv[0]).name.startswith("haproxy"):
            continue
        for flag, value in itertools.pairwise(argv):
            if flag == "-f" and value.startswith(prefix):
                found.append((value[len(prefix) :].split("/")[0], int(entry.name)))
    return found


def _check(workload: Workload, state: _State) -> list[str]:
    problems = [f"{item} is PENDING" for item in state.pending]
    problems += [f"{item} has no reason" for item in state.errors_without_reason]
    if state.unpublished:
        problems.append(f"{state.unpublished} outbox row(s) unpublished")
    for tracked in workload.tracked.values():
        if tracked.id not in state.loadbalancers and not (tracked.deleted or tracked.maybe_deleted):
            problems.append(f"lost: load balancer {tracked.id} (202, never deleted)")
    for device_id, held in state.held.items():
        placed = {
            lb: row for lb, row in state.loadbalancers.items() if row["device_id"] == device_id
        }
        for lb in held.keys() - placed.keys():
            problems.append(f"orphan: device {device_id} holds load balancer {lb}")
        for lb, row in placed.items():
            if row["status"] != "ACTIVE":
                continue
            shown = held.get(lb)
            if shown is None or shown["generation"] != row["generation"]:
                problems.append(
                    f"stale: device {device_id} holds {lb} at "
                    f"{shown and shown['generation']}, the database at {row['generation']}"
                )
                continue
            for kind in ("listeners", "pools", "members", "l7policies"):
                if kind in shown and shown[kind] != state.children[lb][kind]:
                    problems.append(f"stale: device {device_id} holds other {kind} of {lb}")
    problems += state.strays
    return problems


async def settle(
    stack: FaultStack,
    workload: Workload,
    report: Report,
    *,
    fault_ended: float,
    timeout: float = 120.0,
) -> Report:
    """Wait until the invariants hold (or ``timeout``); fill ``report`` with what was seen."""
    deadline = time.monotonic() + timeout
    problems: list[str] = ["not read yet"]
    state: _State | None = None
    while time.monotonic() < deadline:
        try:
            state = await _read_state(stack)
        except Exception as exc:  # a server the scenario stopped may still be coming back
            problems = [f"state not readable: {type(exc).__name__}: {exc}"]
        else:
            problems = _check(workload, state)
            if not problems:
                break
        await asyncio.sleep(0.5)
    report.converge_s = max(0.0, time.monotonic() - fault_ended)
    report.problems = problems
    _count(report, workload, state, problems)
    report.generation_order_violations = len(generation_order_violations(stack))
    report.problems += generation_order_violations(stack)
    return report


def _count(report: Report, workload: Workload, state: _State | None, problems: list[str]) -> None:
    answers = workload.answers
    statuses = Counter("none" if a.status is None else str(a.status) for a in answers)
    report.answers_by_status = dict(sorted(statuses.items()))
    report.requests_accepted = sum(
        1 for a in answers if a.method != "GET" and a.status is not None and a.status < 300
    )
    report.requests_unanswered = statuses.get("none", 0)
    report.server_errors = sum(
        1 for a in answers if a.status and a.status >= 500 and a.status != 503
    )
    report.refusals_without_problem = sum(
        1 for a in answers if a.status and a.status >= 400 and a.content_type != PROBLEM
    )
    report.objects_tracked = len(workload.tracked)
    report.objects_lost = sum(1 for p in problems if p.startswith("lost:"))
    report.orphans_on_devices = sum(1 for p in problems if p.startswith(("orphan:", "HAProxy")))
    report.missing_on_devices = sum(1 for p in problems if p.startswith("stale:"))
    report.objects_pending = sum(1 for p in problems if p.endswith("is PENDING"))
    report.errors_without_reason = sum(1 for p in problems if p.endswith("has no reason"))
    if state is not None:
        report.objects_converged = sum(
            1
            for lb in workload.tracked.values()
            if (lb.id not in state.loadbalancers and (lb.deleted or lb.maybe_deleted))
            or state.loadbalancers.get(lb.id, {}).get("status") in ("ACTIVE", "ERROR")
        )


def generation_order_violations(stack: FaultStack) -> list[str]:
    """Per device and load balancer, a generation applied after a newer one."""
    sequences: list[tuple[str, Iterable[tuple[str, int]]]] = []
    for device in stack.devices:
        if device["driver"] == "sim":
            journal = stack.sim_dir / stack.sim_host(device) / "journal.jsonl"
            lines = journal.read_text().splitlines() if journal.exists() else []
            entries = [json.loads(line) for line in lines]
            applied = [
                (e["loadbalancer_id"], int(e["generation"]))
                for e in entries
                if e["event"] == "apply_done"
            ]
            sequences.append((device["id"], applied))
    for process in stack.haproxy:
        logged = [(m[1], int(m[2])) for m in _APPLIED.finditer(process.log())]
        sequences.append((f"haproxy {process.url}", logged))
    violations = []
    for where, sequence in sequences:
        last: dict[str, int] = {}
        for lb, generation in sequence:
            if generation < last.get(lb, 0):
                violations.append(
                    f"order: {where} applied generation {generation} of {lb} after {last[lb]}"
                )
            last[lb] = max(generation, last.get(lb, 0))
    return violations


async def run_scenario(
    name: str,
    stack: FaultStack,
    fault: Callable[[Workload, Report], Coroutine[Any, Any, None]],
    *,
    seed: int,
    steps: int = 500,
    clients: int = 4,
    settle_timeout: float = 120.0,
) -> Report:
    """The workload with ``fault`` injected while it runs; the report once settled, written."""
    report = Report(name, seed)
    workload = Workload(stack, seed, clients=clients, steps=steps)
    async with watching_pending(stack.isolation) as pending:
        load = asyncio.create_task(workload.run(), name="workload")
        injected = asyncio.create_task(fault(workload, report), name="fault")
        await asyncio.wait({load, injected}, return_when=asyncio.FIRST_COMPLETED)
        if load.done() and load.exception() is not None:
            injected.cancel()
            await asyncio.gather(injected, return_exceptions=True)
            await load
        await injected
        fault_ended = time.monotonic()
        if not load.done():
            tail = asyncio.create_task(until_accepted(workload, AFTER_FAULT))
            await asyncio.wait({load, tail}, return_when=asyncio.FIRST_COMPLETED)
            tail.cancel()
            workload.stop.set()
        await load
        await settle(stack, workload, report, fault_ended=fault_ended, timeout=settle_timeout)
        report.longest_pending_s = pending.longest
    print("\n" + report.table())
    report.write()
    return report


SEED = int(os.environ.get("LBAAS_FAULT_SEED", "1"))
"""The seed of every scenario's workload and faults."""


def assert_clean(report: Report) -> None:
    assert report.violations == 0, report.table()
    assert report.objects_tracked > 0, report.table()


async def until_accepted(workload: Workload, count: int, timeout: float = 60.0) -> None:
    """Until the workload had ``count`` more changes accepted: a moment in the middle of it."""
    await until_answered(workload, 202, count, timeout)


async def until_answered(
    workload: Workload, status: int, count: int, timeout: float = 60.0
) -> None:
    """Until ``count`` more changes were answered ``status`` (503: refused while a dependency
    is away)."""
    start = _answered(workload, status)

    async def reached() -> bool | None:
        return True if _answered(workload, status) >= start + count else None

    await eventually(reached, timeout=timeout, what=f"{count} changes answered {status}")


def _answered(workload: Workload, status: int) -> int:
    return sum(1 for a in workload.answers if a.method != "GET" and a.status == status)


async def until_rows(stack: FaultStack, query: str, what: str, timeout: float = 30.0) -> None:
    """Until ``query`` (a ``count(*) AS n``) counts at least one row."""

    async def counted() -> bool | None:
        rows = await stack.isolation.fetch(query)
        return True if rows[0]["n"] > 0 else None

    await eventually(counted, timeout=timeout, what=what)
