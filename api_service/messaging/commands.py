"""Commands out: publish outbox rows with publisher confirms, and relay what is left; and
the periodic device syncs, on the same shard queues.

A command row is committed together with its operation; publishing happens
after the commit. A row is published only when it is the oldest unpublished
row of its load balancer (its *head*), so the commands of one load balancer
reach the broker in generation order even when the request path and the
relays of several replicas race after an outage. Publishing failures leave
the row for the relay: a command is never lost between commit and broker.

Deadlines are ``asyncio.timeout`` blocks, not ``asyncio.wait_for``: on Python 3.11 the
latter can swallow the cancellation of a shutdown when its call finishes at that moment.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any
from uuid import UUID

import aio_pika
from aio_pika.abc import AbstractExchange, AbstractQueue, AbstractRobustConnection
from prometheus_client import Gauge
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Integer,
    Row,
    Select,
    Uuid,
    any_,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import aliased

from api_service.db.models import OutboxRow
from api_service.secret_keys import SecretKeys, Unsealable
from shared.broker import Broker
from shared.messages import DEVICE_SYNC_TYPE, DeviceSync
from shared.topology import Names, passive_topology

log = logging.getLogger(__name__)

ClaimSyncs = Callable[[], Awaitable[list[tuple[int, DeviceSync]]]]

_BATCH = 200
_Head = Row[int, UUID, UUID, str, str]
"""An outbox row to publish: id, op_id, loadbalancer_id, routing_key, payload."""
_MARK_PUBLISHED = (
    update(OutboxRow)
    .where(OutboxRow.id == any_(bindparam("done", type_=ARRAY(BigInteger()))))
    .values(published_at=func.now())
)
_KEEP_PUBLISHED = timedelta(hours=1)


class CommandPublisher:
    def __init__(
        self,
        broker: Broker,
        names: Names,
        engine: AsyncEngine,
        keys: SecretKeys,
        *,
        publish_timeout: float,
        backlog: Gauge,
    ) -> None:
        self._broker = broker
        self._names = names
        self._engine = engine
        """Plain connections, no ORM session: the outbox is only ever read and marked."""
        self._keys = keys
        self._timeout = publish_timeout
        self._backlog = backlog
        self._exchange: AbstractExchange | None = None
        self._command_queues: list[AbstractQueue] = []
        self.wake = asyncio.Event()
        self._one_pass = asyncio.Lock()
        self._next: _Batch | None = None
        self._passes: set[asyncio.Task[None]] = set()

    async def on_connected(self, connection: AbstractRobustConnection) -> None:
        """Look the topology up and open the confirming channel commands go through."""
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        topology = await passive_topology(channel, self._names)
        self._exchange = topology.commands
        self._command_queues = topology.command_queues
        self.wake.set()

    @property
    def ready(self) -> bool:
        return self._exchange is not None and self._broker.is_connected

    async def consumed_shards(self) -> set[int]:
        """The command shards an agent consumes now (a passive declaration of each queue)."""
        consumed = set()
        for shard, queue in enumerate(self._command_queues):
            with contextlib.suppress(aio_pika.exceptions.AMQPError, OSError, TimeoutError):
                async with asyncio.timeout(self._timeout):
                    declared = await queue.declare()
                if declared.consumer_count:
                    consumed.add(shard)
        return consumed

    async def run_device_syncs(self, claim: ClaimSyncs, interval: float) -> None:
        """Forever: every ``interval``, publish the syncs ``claim`` gives, to the shards an agent
        consumes (to the others they would only pile up ahead of the commands)."""
        while True:
            if not self.ready:
                await asyncio.sleep(min(interval, 1.0))
                continue
            try:
                consumed = await self.consumed_shards()
                if consumed:
                    for shard, sync in await claim():
                        if shard in consumed:
                            await self.publish_sync(str(shard), sync)
            except Exception:
                log.exception("device sync pass failed")
            await asyncio.sleep(interval)

    async def publish_sync(self, routing_key: str, sync: DeviceSync) -> None:
        """A device sync (see ``services.devices``): one lost is replaced at the next interval."""
        exchange = self._exchange
        if exchange is None:
            return
        message = aio_pika.Message(
            sync.model_dump_json().encode(),
            content_type="application/json",
            type=DEVICE_SYNC_TYPE,
        )
        try:
            async with asyncio.timeout(self._timeout):
                await exchange.publish(message, routing_key=routing_key, mandatory=True)
        except (aio_pika.exceptions.AMQPError, OSError, TimeoutError, RuntimeError) as exc:
            log.warning("device sync not published: %s", exc, extra={"device_id": sync.device.id})

    async def publish_new(self, loadbalancer_id: UUID) -> None:
        """The request path: publish the load balancer's head row, just committed.

        The load balancers of requests that arrive while a pass runs are published together
        by the next one (one query, their confirms awaited at once, one update): under load
        a pass serves many requests. A failure leaves the rows to the relay, never to the
        request: its change is committed. A backlog behind a head (only after an outage) is
        the relay's to publish.

        The request waits for its command's confirm, not for the commit that marks its row
        published: a mark lost with the API or the database only has the relay publish the
        command again, and a command applied twice changes nothing (it is the whole tree at
        its generation; a device refuses an older one as superseded).
        """
        batch = self._next
        if batch is None:
            batch = self._next = _Batch()
            task = asyncio.create_task(self._publish_batch(batch))
            self._passes.add(task)
            task.add_done_callback(self._passes.discard)
        batch.loadbalancer_ids.add(loadbalancer_id)
        await batch.sent.wait()

    async def _publish_batch(self, batch: "_Batch") -> None:
        """One pass; its waiters are released however it ends (cancelled too, even while it
        waits for the previous pass)."""
        try:
            async with self._one_pass:
                self._next = None
                await self._publish_heads(batch.loadbalancer_ids, on_sent=batch.sent.set)
        except Exception as exc:
            log.warning("publishing new commands failed; the relay retries: %s", exc)
            self.wake.set()
        finally:
            if self._next is batch:
                self._next = None
            batch.sent.set()

    async def publish_outbox(self) -> int:
        """Publish head rows until none is left; return the count."""
        total = 0
        while True:
            published, complete = await self._publish_heads(None)
            total += published
            if published == 0 or not complete:
                return total

    async def _publish_heads(
        self, loadbalancer_ids: set[UUID] | None, *, on_sent: Callable[[], None] | None = None
    ) -> tuple[int, bool]:
        """Publish the head rows (of these load balancers; None: of all, a batch at a time),
        call ``on_sent`` once the broker answered for each, and mark those confirmed; whether
        every one was."""
        exchange = self._exchange
        if exchange is None or not self.ready:
            return 0, False
        query = _heads(by_loadbalancer=loadbalancer_ids is not None)
        params = {"limit": _BATCH, "ids": list(loadbalancer_ids or ())}
        async with self._engine.begin() as connection:
            rows = (await connection.execute(query, params)).all()
            outcomes = await asyncio.gather(*(self._publish_row(exchange, row) for row in rows))
            if on_sent is not None:
                on_sent()
            done = [row.id for row, outcome in zip(rows, outcomes, strict=True) if outcome is None]
            if done:
                await connection.execute(_MARK_PUBLISHED, {"done": done})
            for row, outcome in zip(rows, outcomes, strict=True):
                if outcome is not None:
                    await connection.execute(
                        update(OutboxRow).where(OutboxRow.id == row.id).values(**outcome)
                    )
        return len(rows), all(outcome is None or "published_at" in outcome for outcome in outcomes)

    async def _publish_row(self, exchange: AbstractExchange, row: _Head) -> dict[str, Any] | None:
        """Publish one row and await its confirm: None, or what to record on the row instead."""
        try:
            payload = self._keys.open(row.payload)
        except Unsealable as exc:
            return _unsealable(row, exc)
        message = aio_pika.Message(
            payload.encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(row.op_id),
        )
        try:
            async with asyncio.timeout(self._timeout):
                await exchange.publish(message, routing_key=row.routing_key, mandatory=True)
        except (aio_pika.exceptions.AMQPError, OSError, TimeoutError, RuntimeError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning(
                "publishing command failed; the relay retries: %s",
                error,
                extra={"op_id": row.op_id, "loadbalancer_id": row.loadbalancer_id},
            )
            return {"attempts": OutboxRow.attempts + 1, "last_error": error}
        return None

    async def run_relay(self, interval: float) -> None:
        """Publish what the request path could not, forever; purge old published rows."""
        while True:
            try:
                count = await self.publish_outbox()
                if count:
                    log.info("outbox relay published %d command(s)", count)
                self._backlog.set(await self.pending_count())
                async with self._engine.begin() as connection:
                    await connection.execute(
                        delete(OutboxRow).where(
                            OutboxRow.published_at < func.now() - _KEEP_PUBLISHED
                        )
                    )
            except Exception:
                log.exception("outbox relay pass failed")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await self.wake.wait()
            self.wake.clear()

    async def pending_count(self) -> int:
        async with self._engine.connect() as connection:
            count = await connection.scalar(
                select(func.count()).select_from(OutboxRow).where(OutboxRow.published_at.is_(None))
            )
        return count or 0


@cache
def _heads(*, by_loadbalancer: bool) -> Select[int, UUID, UUID, str, str]:
    """The head rows to publish (of the load balancers bound as ``ids``), ``limit`` at most;
    built once: the request path runs it for every batch."""
    older = aliased(OutboxRow)
    is_head = ~(
        select(older.id)
        .where(
            older.loadbalancer_id == OutboxRow.loadbalancer_id,
            older.published_at.is_(None),
            older.id < OutboxRow.id,
        )
        .exists()
    )
    query = select(
        OutboxRow.id,
        OutboxRow.op_id,
        OutboxRow.loadbalancer_id,
        OutboxRow.routing_key,
        OutboxRow.payload,
    ).where(OutboxRow.published_at.is_(None), is_head)
    if by_loadbalancer:
        query = query.where(
            OutboxRow.loadbalancer_id == any_(bindparam("ids", type_=ARRAY(Uuid())))
        )
    return (
        query.order_by(OutboxRow.id)
        .limit(bindparam("limit", type_=Integer()))
        .with_for_update(skip_locked=True)
    )


def _unsealable(row: _Head, exc: Unsealable) -> dict[str, Any]:
    """A key was dropped from LBAAS_SECRET_KEYS too early: the command cannot be sent. Leaving
    it would hold up every later command of its load balancer; its operation times out."""
    log.error(
        "dropping a command sealed under none of LBAAS_SECRET_KEYS",
        extra={"op_id": row.op_id, "loadbalancer_id": row.loadbalancer_id},
    )
    return {"published_at": func.now(), "last_error": f"not published: {exc}"}


@dataclass(frozen=True)
class _Batch:
    """The load balancers whose new commands the next pass publishes, and when it has."""

    loadbalancer_ids: set[UUID] = field(default_factory=set)
    sent: asyncio.Event = field(default_factory=asyncio.Event)
