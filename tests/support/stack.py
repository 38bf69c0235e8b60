"""Real processes for tests: a private database and queue prefix, ``lbaas-api`` and ``lbaas-agent``.

Processes are started the way users start them (the console scripts, settings
from ``LBAAS_*`` variables) and stopped with SIGTERM; their logs go to files
that a failing test prints.
"""

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aio_pika
import asyncpg
import httpx

from shared.topology import Names

BIN = Path(sys.executable).parent
ADMIN_DSN = os.environ.get("LBAAS_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("LBAAS_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
SHARDS = 4

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


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


@dataclass
class Isolation:
    """One database and one queue prefix, created for a test run (or a test) and dropped after."""

    name: str = field(default_factory=lambda: f"lbaas_test_{uuid.uuid4().hex[:10]}")
    amqp_url: str = AMQP_URL

    @property
    def database_url(self) -> str:
        base = ADMIN_DSN.rsplit("/", 1)[0]
        return f"{base}/{self.name}"

    @property
    def queue_prefix(self) -> str:
        return self.name.replace("_", "-")

    @property
    def names(self) -> Names:
        return Names(self.queue_prefix, SHARDS)

    def env(self, **extra: object) -> dict[str, str]:
        env = {
            **os.environ,
            "LBAAS_DATABASE_URL": self.database_url,
            "LBAAS_AMQP_URL": self.amqp_url,
            "LBAAS_QUEUE_PREFIX": self.queue_prefix,
            "LBAAS_COMMAND_SHARDS": str(SHARDS),
        }
        env.update({f"LBAAS_{key.upper()}": str(value) for key, value in extra.items()})
        return env

    async def create(self) -> None:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'CREATE DATABASE "{self.name}"')
        finally:
            await admin.close()
        process = await asyncio.create_subprocess_exec(
            str(BIN / "lbaas-manage"),
            "db",
            "upgrade",
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        assert process.returncode == 0, output.decode()

    async def drop(self) -> None:
        admin = await asyncpg.connect(ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        finally:
            await admin.close()
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


async def delete_topology(amqp_url: str, names: Names) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        queues = [*names.command_queues, names.results_queue, names.status_queue, names.dead_queue]
        for queue in queues:
            await channel.queue_delete(queue)
        exchanges = (
            names.commands_exchange,
            names.results_exchange,
            names.status_exchange,
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

    async def wait_for_log(self, text: str, timeout: float = 20) -> None:
        async def seen() -> bool | None:
            assert self.running, f"{self.argv[0]} exited:\n{self.log()[-3000:]}"
            return True if text in self.log() else None

        await eventually(seen, timeout=timeout, what=f"{text!r} in {self.log_path}")


class Api(Process):
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        super().__init__(
            [str(BIN / "lbaas-api"), "--host", "127.0.0.1", "--port", str(self.port)],
            env,
            log_dir / f"api-{self.port}.log",
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

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


@asynccontextmanager
async def isolated(amqp_url: str = AMQP_URL) -> AsyncIterator[Isolation]:
    """A database and queue prefix of a test's own, dropped afterwards."""
    isolation = Isolation(amqp_url=amqp_url)
    await isolation.create()
    try:
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
