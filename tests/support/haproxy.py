"""HAProxy devices and the servers behind them, for tests that carry real traffic.

:class:`Device` is an ``lbaas-device`` process started as users start it, with
a short state directory of its own under /tmp (HAProxy's socket paths are
limited). :class:`Backend` is a tiny HTTP/1.1 server (keep-alive) on
127.0.0.1 that answers its own name and counts what it serves, and
:class:`EchoBackend` a TCP echo server. Traffic stays on 127.0.0.0/8.
"""

import asyncio
import contextlib
import itertools
import os
import random
import secrets
import shutil
import signal
import tempfile
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from device_service.haproxy import processes_of
from shared.messages import ListenerSpec, LoadBalancerSpec, MemberSpec, PoolSpec
from tests.support.client import LbaasClient
from tests.support.stack import BIN, Process, eventually, free_port

HEALTH_PATH = "/health"
"""What health monitors of these tests ask for; not counted as traffic."""
PORT = 8080
"""The port of the HTTP listeners of these tests (each load balancer has a VIP of its own)."""
MONITOR = {
    "type": "HTTP",
    "delay": 1,
    "timeout": 1,
    "max_retries": 1,
    "max_retries_down": 1,
    "url_path": HEALTH_PATH,
    "expected_codes": "200",
}
"""The fastest monitor the API allows: a stopped backend is DOWN after about a second."""

_SECOND_OCTET = random.randrange(100, 250)
_THIRD_OCTET = itertools.count(random.randrange(0, 200))


def vip_cidr() -> str:
    """A /24 of 127.0.0.0/8 that no other device of this run (or, likely, another run) uses."""
    return f"127.{_SECOND_OCTET}.{next(_THIRD_OCTET) % 256}.0/24"


class Device(Process):
    """``lbaas-device`` with its own secret, port and state directory (removed by :meth:`purge`)."""

    def __init__(
        self,
        log_dir: Path,
        *,
        supervise_interval: float = 0.5,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.secret = secrets.token_urlsafe(24)
        self.state_dir = Path(tempfile.mkdtemp(prefix="lbd-", dir="/tmp"))
        env = {
            **os.environ,
            "LBAAS_DEVICE_SECRET": self.secret,
            "LBAAS_DEVICE_SUPERVISE_INTERVAL": str(supervise_interval),
            "LBAAS_DEVICE_HARD_STOP_AFTER": "5",
            "LBAAS_DEVICE_STOP_GRACE": "2",
            **(environment or {}),
        }
        super().__init__(
            [
                str(BIN / "lbaas-device"),
                "--listen",
                f"127.0.0.1:{self.port}",
                "--state-dir",
                str(self.state_dir),
            ],
            env,
            log_dir / f"device-{self.port}.log",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def registration(self, **extra: object) -> dict[str, Any]:
        """What ``LbaasClient.create_device`` needs to register this device."""
        return {
            "driver": "haproxy",
            "url": self.url,
            "cidr": vip_cidr(),
            "management_secret": self.secret,
            **extra,
        }

    def http(self, secret: str | None = None) -> httpx.AsyncClient:
        """A client of the management API with the device's secret, another one, or none ("")."""
        token = self.secret if secret is None else secret
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)

    async def wait_ready(self) -> None:
        async with self.http() as http:

            async def answered() -> bool | None:
                assert self.running, f"lbaas-device exited:\n{self.log()[-3000:]}"
                with contextlib.suppress(httpx.TransportError):
                    if (await http.get("/healthz")).status_code == 200:
                        return True
                return None

            await eventually(answered, timeout=20, what=f"lbaas-device on {self.url}")

    def instance_dir(self, loadbalancer_id: str) -> Path:
        return self.state_dir / loadbalancer_id.replace("-", "")

    def pids(self, loadbalancer_id: str) -> list[int]:
        """Live HAProxy processes (master and workers) of one load balancer."""
        return processes_of(self.instance_dir(loadbalancer_id) / "haproxy.cfg")

    def master_pid(self, loadbalancer_id: str) -> int:
        return int((self.instance_dir(loadbalancer_id) / "haproxy.pid").read_text())

    def environment(self, loadbalancer_id: str) -> list[bytes]:
        """The environment the load balancer's HAProxy master runs with."""
        path = Path(f"/proc/{self.master_pid(loadbalancer_id)}/environ")
        return [entry for entry in path.read_bytes().split(b"\0") if entry]

    def config(self, loadbalancer_id: str) -> str:
        return (self.instance_dir(loadbalancer_id) / "haproxy.cfg").read_text()

    def all_pids(self) -> list[int]:
        return [
            pid
            for entry in (self.state_dir.iterdir() if self.state_dir.exists() else [])
            for pid in processes_of(entry / "haproxy.cfg")
        ]

    def purge(self) -> None:
        """Stop the daemon and every HAProxy process it left, and remove its state."""
        if self.running:
            self.stop()
        for pid in self.all_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.state_dir, ignore_errors=True)


class Backend:
    """An HTTP/1.1 server answering its name; ``hits`` counts requests other than health checks."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.hits = 0
        self.cookies: Counter[str] = Counter()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    @property
    def address(self) -> str:
        return "127.0.0.1"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        """Close the listening socket and every open connection: the member is down."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._connections):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode(errors="replace").split("\r\n")
                path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(":") for line in lines[1:] if line)
                }
                length = int(headers.get("content-length", "0"))
                if length:
                    await reader.readexactly(length)
                if not path.startswith(HEALTH_PATH):
                    self.hits += 1
                body = self.name.encode()
                closing = headers.get("connection", "").lower() == "close" or "HTTP/1.0" in lines[0]
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                    + f"Content-Length: {len(body)}\r\n".encode()
                    + (b"Connection: close\r\n" if closing else b"")
                    + b"\r\n"
                    + body
                )
                await writer.drain()
                if closing:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            self._connections.discard(writer)
            writer.close()


class EchoBackend:
    """A TCP server that sends back what it receives."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


def member_body(backend: Backend | EchoBackend, **extra: object) -> dict[str, object]:
    return {"address": "127.0.0.1", "protocol_port": backend.port, **extra}


@asynccontextmanager
async def running_device(log_dir: Path) -> AsyncIterator[Device]:
    """A started, answering ``lbaas-device``; purged (processes and state) afterwards."""
    device = Device(log_dir)
    device.start()
    try:
        await device.wait_ready()
        yield device
    finally:
        device.purge()


@asynccontextmanager
async def serving(backends: Sequence[Backend | EchoBackend]) -> AsyncIterator[None]:
    for backend in backends:
        await backend.start()
    try:
        yield
    finally:
        for backend in backends:
            await backend.stop()


async def create_web(
    client: LbaasClient,
    registered: dict[str, Any],
    backends: Sequence[Backend],
    *,
    pool: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Through the API: an HTTP listener and a monitored ROUND_ROBIN pool of ``backends``,
    in one call; the load balancer once ACTIVE."""
    default_pool = {
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [member_body(b) for b in backends],
        "healthmonitor": MONITOR,
        **(pool or {}),
    }
    listener = {"protocol": "HTTP", "protocol_port": PORT, "default_pool": default_pool}
    response = await client.create_lb(registered, listeners=[listener], **fields)
    assert response.status_code == 202, response.text
    return await client.wait_lb(response.json()["loadbalancer"]["id"], ("ACTIVE",))


def http_spec(
    vip: str, members: Sequence[tuple[str, int]], generation: int = 1, weight: int = 1
) -> LoadBalancerSpec:
    """The spec an agent would get for an HTTP listener on ``vip:PORT`` and a ROUND_ROBIN pool
    of ``members`` (address, port); ids derived from ``vip``, so equal arguments, equal spec."""

    def id_of(name: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, f"{vip}/{name}")

    return LoadBalancerSpec(
        id=id_of("loadbalancer"),
        project_id="p",
        admin_state_up=True,
        vip_address=vip,
        generation=generation,
        listeners=[
            ListenerSpec(
                id=id_of("listener"),
                protocol="HTTP",
                protocol_port=PORT,
                admin_state_up=True,
                connection_limit=-1,
                default_pool_id=id_of("pool"),
                timeout_client_data=50_000,
                timeout_member_connect=5_000,
                timeout_member_data=50_000,
                timeout_tcp_inspect=0,
            )
        ],
        pools=[
            PoolSpec(
                id=id_of("pool"),
                protocol="HTTP",
                lb_algorithm="ROUND_ROBIN",
                admin_state_up=True,
                members=[
                    MemberSpec(
                        id=id_of(f"member/{i}"),
                        address=address,
                        protocol_port=port,
                        weight=weight,
                        backup=False,
                        admin_state_up=True,
                    )
                    for i, (address, port) in enumerate(members)
                ],
            )
        ],
    )
