"""Real processes for tests: a private database and queue prefix, ``lbaas-api`` and ``lbaas-agent``.

Processes are started the way users start them (the console scripts, settings
from ``LBAAS_*`` variables) and stopped with SIGTERM; their logs go to files
that a failing test prints.

Each :class:`Isolation` also gets a RabbitMQ vhost of its own with an API user
and an agent user, created by ``scripts/rabbitmq-users.sh`` (so with
``rabbitmqctl``, as root) exactly as ``make run`` does; the API process
connects as the first and agents as the second. ``LBAAS_TEST_BROKER_USERS=0``
runs everything as the admin user of ``LBAAS_TEST_AMQP_URL`` in its vhost
instead.
"""

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aio_pika
import asyncpg
import httpx

from api_service.secret_keys import new_key
from shared.topology import Names
from tests.support.rabbitmq_node import allocate_port

BIN = Path(sys.executable).parent
ADMIN_DSN = os.environ.get("LBAAS_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("LBAAS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
BROKER_USERS = os.environ.get("LBAAS_TEST_BROKER_USERS", "1") != "0"
USERS_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rabbitmq-users.sh"
SHARDS = 4
SECRET_KEY = os.environ.setdefault("LBAAS_SECRET_KEYS", new_key())
"""What every API process (and ``ApiSettings`` in a test) seals secrets with, for the run."""

T = TypeVar("T")


def free_port() -> int:
    """A free port below the ephemeral range: one chosen now and bound later (a process's
    listener, a backend stopped and started again) cannot meanwhile be taken by a client
    socket's port."""
    return allocate_port()


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = 30.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``probe`` until it returns something other than None, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


@dataclass(frozen=True)
class BrokerUser:
    name: str
    password: str = field(repr=False)


def amqp_url_as(url: str, *, vhost: str, user: BrokerUser | None = None) -> str:
    """``url`` with another vhost and, given ``user``, that user's credentials."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if user is not None:
        host = netloc.rpartition("@")[2]
        netloc = f"{quote(user.name, safe='')}:{quote(user.password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, path="/" + quote(vhost, safe="")))


class DatabaseServer(Protocol):
    """Where an isolation's database lives: the machine's server, or a private one."""

    def admin_dsn(self) -> str:
        """A DSN of the server's ``postgres`` database on the (current) primary."""
        ...

    def database_url(self, database: str) -> str:
        """The URL services reach ``database`` by (several hosts for a standby pair)."""
        ...


@dataclass(frozen=True)
class SharedServer:
    """The machine's PostgreSQL (``LBAAS_TEST_ADMIN_DSN``)."""

    dsn: str = ADMIN_DSN

    def admin_dsn(self) -> str:
        return self.dsn

    def database_url(self, database: str) -> str:
        return f"{self.dsn.rsplit('/', 1)[0]}/{database}"


@dataclass
class Isolation:
    """One database, one queue prefix and one vhost, created for a test run (or a test).

    ``amqp_url`` is the broker's admin URL; with ``broker_users`` it becomes the
    admin's URL into the isolation's own vhost (the admin gets every permission
    there, so tests can inspect queues and publish forged messages), and the
    services get :meth:`api_env` and :meth:`agent_env`, each with its own user.
    Without it (a private node that has only guest), everything runs as
    ``amqp_url`` in its vhost, the services included.
    """

    name: str = field(default_factory=lambda: f"lbaas_test_{uuid.uuid4().hex[:10]}")
    amqp_url: str = AMQP_URL
    broker_users: bool = BROKER_USERS
    server: DatabaseServer = field(default_factory=SharedServer)
    server_url: str = field(init=False)
    api_user: BrokerUser = field(init=False)
    agent_user: BrokerUser = field(init=False)

    def __post_init__(self) -> None:
        self.server_url = self.amqp_url
        if self.broker_users:
            self.amqp_url = amqp_url_as(self.server_url, vhost=self.vhost)
        self.api_user = BrokerUser(f"{self.vhost}-api", secrets.token_urlsafe(24))
        self.agent_user = BrokerUser(f"{self.vhost}-agent", secrets.token_urlsafe(24))

    @property
    def database_url(self) -> str:
        return self.server.database_url(self.name)

    @property
    def queue_prefix(self) -> str:
        return self.name.replace("_", "-")

    @property
    def vhost(self) -> str:
        return self.queue_prefix

    @property
    def names(self) -> Names:
        return Names(self.queue_prefix, SHARDS)

    @property
    def api_amqp_url(self) -> str:
        if not self.broker_users:
            return self.amqp_url
        return amqp_url_as(self.server_url, vhost=self.vhost, user=self.api_user)

    @property
    def agent_amqp_url(self) -> str:
        if not self.broker_users:
            return self.amqp_url
        return amqp_url_as(self.server_url, vhost=self.vhost, user=self.agent_user)

    def api_env(self, **extra: object) -> dict[str, str]:
        """The environment of an ``lbaas-api`` process: ``LBAAS_<KEY>`` for each extra."""
        return self._env(self.api_amqp_url, extra)

    def agent_env(self, **extra: object) -> dict[str, str]:
        """The environment of an ``lbaas-agent`` process: ``LBAAS_<KEY>`` for each extra."""
        return self._env(self.agent_amqp_url, extra)

    def env(self, **extra: object) -> dict[str, str]:
        """The API's environment (:meth:`api_env`); agents take :meth:`agent_env`."""
        return self.api_env(**extra)

    def _env(self, amqp_url: str, extra: dict[str, object]) -> dict[str, str]:
        env = {
            **os.environ,
            "LBAAS_DATABASE_URL": self.database_url,
            "LBAAS_AMQP_URL": amqp_url,
            "LBAAS_QUEUE_PREFIX": self.queue_prefix,
            "LBAAS_COMMAND_SHARDS": str(SHARDS),
            "LBAAS_ALLOW_LOOPBACK_MEMBERS": "true",  # the tests' backends are on 127.0.0.1
        }
        env.update({f"LBAAS_{key.upper()}": str(value) for key, value in extra.items()})
        return env

    async def create(self) -> None:
        """The broker's vhost, users and topology, and the migrated database, as an operator."""
        await self.create_broker()
        await self.manage("broker", "declare")
        admin = await asyncpg.connect(self.server.admin_dsn())
        try:
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()
        await self.manage("db", "upgrade")

    async def manage(self, *argv: str) -> None:
        """``lbaas-manage ARGV`` with the admin's broker URL."""
        process = await asyncio.create_subprocess_exec(
            str(BIN / "lbaas-manage"),
            *argv,
            env={**self.api_env(), "LBAAS_AMQP_URL": self.amqp_url},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()

    async def create_broker(self) -> None:
        """With ``broker_users``: the vhost, both users, and every permission for the admin."""
        if not self.broker_users:
            return
        await _run_users_script(
            "create",
            self.vhost,
            self.queue_prefix,
            self.api_user.name,
            self.api_user.password,
            self.agent_user.name,
            self.agent_user.password,
            unquote(urlsplit(self.server_url).username or "guest"),
        )

    async def drop(self) -> None:
        admin = await asyncpg.connect(self.server.admin_dsn())
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await admin.close()
        await self.drop_broker()

    async def drop_broker(self) -> None:
        """Delete the vhost (so every queue in it) and both users, or else the topology."""
        if self.broker_users:
            await _run_users_script("delete", self.vhost, self.api_user.name, self.agent_user.name)
            return
        with contextlib.suppress(aio_pika.exceptions.AMQPConnectionError):
            await delete_topology(
                self.amqp_url, self.names
            )  # a stopped private broker keeps nothing

    async def db(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url.replace("+asyncpg", ""))

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        connection = await self.db()
        try:
            return list(await connection.fetch(query, *args))
        finally:
            await connection.close()


async def _run_users_script(*args: str) -> None:
    """Run ``scripts/rabbitmq-users.sh``; its output and this error hold no password."""
    process = await asyncio.create_subprocess_exec(
        str(USERS_SCRIPT), *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(
            f"rabbitmq-users.sh {args[0]} failed (exit {process.returncode}); it needs "
            "rabbitmqctl, i.e. root (LBAAS_TEST_BROKER_USERS=0 runs everything as guest):\n"
            + output.decode(errors="replace")
        )


async def delete_topology(amqp_url: str, names: Names) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queues = [
            *names.command_queues,
            names.results_queue,
            names.status_queue,
            names.providers_queue,
            names.dead_queue,
        ]
        for queue in queues:
            await channel.queue_delete(queue)
        exchanges = (
            names.commands_exchange,
            names.results_exchange,
            names.status_exchange,
            names.providers_exchange,
            names.dead_exchange,
        )
        for exchange in exchanges:
            await channel.exchange_delete(exchange)


class Process:
    """A service process with its output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """``kill -9``: no chance to clean up."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(10)

    def stop(self, timeout: float = 15) -> bool:
        """SIGTERM; True when the process shut down cleanly (uvicorn re-raises the signal)."""
        if self.popen is None or self.popen.poll() is not None:
            return False
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout) in (0, -signal.SIGTERM)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(5)
            raise AssertionError(f"{self.argv[0]} ignored SIGTERM for {timeout} s") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Api(Process):
    """``lbaas-api`` on a free port, its metrics on another (or ``LBAAS_METRICS_PORT`` of
    ``env``: 0 serves none)."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.metrics_port = int(env.get("LBAAS_METRICS_PORT") or free_port())
        super().__init__(
            [str(BIN / "lbaas-api"), "--host", "127.0.0.1", "--port", str(self.port)],
            {**env, "LBAAS_METRICS_PORT": str(self.metrics_port)},
            log_dir / f"api-{self.port}.log",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    async def wait_ready(self, path: str = "/healthz", timeout: float = 30) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:

            async def answered() -> bool | None:
                assert self.running, f"lbaas-api exited:\n{self.log()[-3000:]}"
                try:
                    response = await client.get(path)
                except httpx.TransportError:
                    return None
                return True if response.status_code == 200 else None

            await eventually(answered, timeout=timeout, what=f"{self.url}{path}")


class Agent(Process):
    def __init__(self, env: dict[str, str], log_dir: Path, agent_id: str) -> None:
        self.agent_id = agent_id
        super().__init__(
            [str(BIN / "lbaas-agent")],
            {**env, "LBAAS_AGENT_ID": agent_id},
            log_dir / f"agent-{agent_id}.log",
        )

    async def wait_announced(
        self,
        api_url: str,
        token: str,
        providers: Iterable[str] = ("haproxy", "noop", "sim"),
        timeout: float = 30,
    ) -> None:
        """Until the API at ``api_url`` lists ``providers``: options beyond the baseline
        (``shared.capabilities.BASELINE``) are accepted only once a provider announced them.

        The agent announces before it consumes any command."""
        wanted = set(providers)
        async with httpx.AsyncClient(
            base_url=api_url, headers={"X-Auth-Token": token}, timeout=2
        ) as client:

            async def listed() -> bool | None:
                assert self.running, f"lbaas-agent exited:\n{self.log()[-3000:]}"
                response = await client.get("/v2/lbaas/providers")
                names = {p["name"] for p in response.json().get("providers", [])}
                return True if response.status_code == 200 and wanted <= names else None

            await eventually(listed, timeout=timeout, what=f"providers {sorted(wanted)} announced")


@asynccontextmanager
async def isolated(
    amqp_url: str = AMQP_URL,
    broker_users: bool = BROKER_USERS,
    server: DatabaseServer | None = None,
) -> AsyncIterator[Isolation]:
    """A database, queue prefix and vhost of a test's own, dropped afterwards."""
    isolation = Isolation(
        amqp_url=amqp_url, broker_users=broker_users, server=server or SharedServer()
    )
    try:
        await isolation.create()
        yield isolation
    finally:
        await isolation.drop()


@asynccontextmanager
async def running(*processes: Process) -> AsyncIterator[None]:
    """Stop (or reap) every process when the block ends, whatever happened in it."""
    try:
        yield
    finally:
        for process in processes:
            if process.popen is not None and process.running:
                process.stop()
