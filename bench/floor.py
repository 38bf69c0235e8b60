"""The physical floor of a create: what the service's own parts cost with nothing of the
service around them, measured on the same machine and in the same run as the service.

- accept: ``INSERT`` of a row and ``COMMIT`` (asyncpg), then a persistent message published to
  a quorum queue with a publisher confirm (aio-pika): what ``POST`` must do before its 202;
- round trip: accept, then a consumer (its own connection, as an agent) takes the message,
  publishes a result to a second quorum queue with a confirm and acknowledges; a result
  consumer ``UPDATE`` s the row and commits, and the client learns it at once (in process):
  what ``POST`` → ``ACTIVE`` must do at least.

Each is measured one at a time (p50, p99) and with ``clients`` concurrent loops for
``seconds`` (operations/s). Its own database and vhost, dropped afterwards.

    python -m bench.floor [--samples 300] [--clients 16] [--seconds 10]
"""

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from aio_pika.abc import AbstractExchange, AbstractIncomingMessage

from bench.latency import percentiles_ms
from tests.support.stack import Isolation, isolated

QUEUE_ARGUMENTS: dict[str, Any] = {"x-queue-type": "quorum"}


@dataclass
class Floor:
    """The client side of the floor loop: a pool of database connections and a confirming
    channel; round trips are woken by the result consumer."""

    pool: asyncpg.Pool
    exchange: AbstractExchange
    commands: str
    waiting: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    async def accept(self, row: str | None = None) -> None:
        row = row or str(uuid.uuid4())
        async with self.pool.acquire() as connection:
            await connection.execute(
                "INSERT INTO floor (id, status) VALUES ($1, 'PENDING_CREATE')", row
            )
        await self.exchange.publish(
            aio_pika.Message(row.encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=self.commands,
        )

    async def round_trip(self) -> None:
        row = str(uuid.uuid4())
        done = self.waiting[row] = asyncio.get_running_loop().create_future()
        await self.accept(row)
        await done


async def _agent(url: str, commands: str, results: str) -> aio_pika.abc.AbstractConnection:
    """Takes each command and publishes its result with a confirm, then acknowledges."""
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    await channel.set_qos(prefetch_count=64)
    queue = await channel.get_queue(commands)
    exchange = channel.default_exchange

    async def on_command(message: AbstractIncomingMessage) -> None:
        await exchange.publish(
            aio_pika.Message(message.body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
            routing_key=results,
        )
        await message.ack()

    await queue.consume(on_command)
    return connection


async def _result_consumer(url: str, results: str, floor: Floor) -> aio_pika.abc.AbstractConnection:
    """Writes each result back (``UPDATE`` + ``COMMIT``) and wakes its client."""
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=64)
    queue = await channel.get_queue(results)

    async def on_result(message: AbstractIncomingMessage) -> None:
        row = message.body.decode()
        async with floor.pool.acquire() as db:
            await db.execute("UPDATE floor SET status = 'ACTIVE' WHERE id = $1", row)
        await message.ack()
        waiter = floor.waiting.pop(row, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    await queue.consume(on_result)
    return connection


async def _sequential(operation: Callable[[], Awaitable[object]], samples: int) -> dict[str, Any]:
    timings = []
    for _ in range(samples):
        start = time.perf_counter()
        await operation()
        timings.append(time.perf_counter() - start)
    return percentiles_ms(timings)


async def _concurrent(
    operation: Callable[[], Awaitable[object]], clients: int, seconds: float
) -> dict[str, Any]:
    timings: list[float] = []
    ends = time.monotonic() + seconds

    async def loop() -> None:
        while time.monotonic() < ends:
            start = time.perf_counter()
            await operation()
            timings.append(time.perf_counter() - start)

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return {"clients": clients, "per_s": len(timings) / elapsed, **percentiles_ms(timings)}


async def measure(
    isolation: Isolation, samples: int, clients: int, seconds: float
) -> dict[str, Any]:
    dsn = isolation.database_url.replace("+asyncpg", "")
    pool = await asyncpg.create_pool(dsn, min_size=clients, max_size=clients + 4)
    await pool.execute("CREATE TABLE floor (id uuid PRIMARY KEY, status text NOT NULL)")
    url = isolation.amqp_url
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    commands, results = (
        f"{isolation.queue_prefix}.floor.commands",
        f"{isolation.queue_prefix}.floor.results",
    )
    for name in (commands, results):
        await channel.declare_queue(name, durable=True, arguments=QUEUE_ARGUMENTS)
    floor = Floor(pool, channel.default_exchange, commands)
    agent = await _agent(url, commands, results)
    consumer = await _result_consumer(url, results, floor)
    try:
        await _sequential(floor.round_trip, 30)  # warm-up
        report = {
            "accept": await _sequential(floor.accept, samples),
            "round_trip": await _sequential(floor.round_trip, samples),
            "accept_concurrent": await _concurrent(floor.accept, clients, seconds),
            "round_trip_concurrent": await _concurrent(floor.round_trip, clients, seconds),
        }
    finally:
        for name in (commands, results):
            await channel.queue_delete(name)
        for opened in (agent, consumer, connection):
            await opened.close()
        await pool.close()
    return report


def print_table(report: dict[str, Any]) -> None:
    print(f"{'floor':<36}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'ops/s':>9}")
    for key, label in (
        ("accept", "accept, one at a time"),
        ("round_trip", "round trip, one at a time"),
        ("accept_concurrent", "accept, concurrent"),
        ("round_trip_concurrent", "round trip, concurrent"),
    ):
        row = report[key]
        rate = f"{row['per_s']:>9.0f}" if "per_s" in row else f"{'':>9}"
        label = f"{label} ({row['clients']})" if "clients" in row else label
        print(f"{label:<36}{row['n']:>7}{row['p50_ms']:>9.2f}{row['p99_ms']:>9.2f}{rate}")


async def main(samples: int, clients: int, seconds: float) -> dict[str, Any]:
    async with isolated() as isolation:
        return await measure(isolation, samples, clients, seconds)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("bench-results/floor.json"))
    args = parser.parse_args()
    result = asyncio.run(main(args.samples, args.clients, args.seconds))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print_table(result)
    print(f"\nwritten to {args.out}")
