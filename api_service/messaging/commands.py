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
    Interval,
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
from api_service.services.changes import NewCommand
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
    .where(
        OutboxRow.id.in_(
            select(OutboxRow.id)
            .where(OutboxRow.id == any_(bindparam("done", type_=ARRAY(BigInteger()))))
            .with_for_update(skip_locked=True)
        )
    )
    .values(published_at=func.now())
)
"""Marking rows published, but none another transaction holds (the relay's pass, which marks
its own, or a reseal: the relay then publishes that command again); never waits."""
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
        self._marks = PublishedMarks(engine)

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

    async def publish_new(self, command: NewCommand) -> None:
        """The request path: publish a command just committed, from memory, and wait for its
        confirm; a failure leaves it to the relay, never to the request: its change is
        committed. A command behind an unpublished one (a mark not written yet, or an outage)
        waits for this process's marks, then publishes its load balancer's head row as the
        relay would (which is itself, unless the older one is really unpublished).

        Its row is marked published as the request answers, together with those of the
        requests confirmed meanwhile (:class:`PublishedMarks`). A mark lost with the API or
        the database only has the relay publish the command again, and a command applied
        twice changes nothing (it is the whole tree at its generation; a device refuses an
        older one as superseded). The relay leaves a row alone for ``publish_timeout`` after
        it was written, the time its request has to publish it.
        """
        exchange = self._exchange
        if exchange is None or not self.ready:
            self.wake.set()
            return
        if not command.head:
            await self._marks.settled()
            await self._publish_heads(command.loadbalancer_id)
            return
        failure = await self._publish(
            exchange, command.op_id, command.loadbalancer_id, command.routing_key, command.payload
        )
        if failure is None:
            self._marks.add(command.outbox_id)
        else:
            self.wake.set()

    async def marked(self) -> None:
        """Once the rows of the commands confirmed so far are marked published (a stop)."""
        await self._marks.settled()

    async def publish_outbox(self) -> int:
        """Publish head rows until none is left; return the count."""
        total = 0
        while True:
            published, complete = await self._publish_heads(None)
            total += published
            if published == 0 or not complete:
                return total

    async def _publish_heads(self, loadbalancer_id: UUID | None) -> tuple[int, bool]:
        """Publish the head row of a load balancer, or (None) a batch of head rows older than
        the request path's time to publish them, and mark those confirmed; how many there
        were and whether every one was."""
        exchange = self._exchange
        if exchange is None or not self.ready:
            return 0, False
        params = {
            "limit": _BATCH,
            "grace": timedelta(seconds=self._timeout),
            "loadbalancer_id": loadbalancer_id,
        }
        query = _heads(of_loadbalancer=loadbalancer_id is not None)
        async with self._engine.begin() as connection:
            rows = (await connection.execute(query, params)).all()
            outcomes = await asyncio.gather(*(self._publish_row(exchange, row) for row in rows))
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
        error = await self._publish(
            exchange, row.op_id, row.loadbalancer_id, row.routing_key, payload
        )
        return None if error is None else {"attempts": OutboxRow.attempts + 1, "last_error": error}

    async def _publish(
        self,
        exchange: AbstractExchange,
        op_id: UUID,
        loadbalancer_id: UUID,
        routing_key: str,
        payload: str,
    ) -> str | None:
        """Publish one command and await its confirm: None, or why it failed."""
        message = aio_pika.Message(
            payload.encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=str(op_id),
        )
        try:
            async with asyncio.timeout(self._timeout):
                await exchange.publish(message, routing_key=routing_key, mandatory=True)
        except (aio_pika.exceptions.AMQPError, OSError, TimeoutError, RuntimeError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:1000]
            log.warning(
                "publishing command failed; the relay retries: %s",
                error,
                extra={"op_id": op_id, "loadbalancer_id": loadbalancer_id},
            )
            return error
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
def _heads(*, of_loadbalancer: bool) -> Select[int, UUID, UUID, str, str]:
    """The head rows to publish, ``limit`` at most: of the load balancer bound as
    ``loadbalancer_id``, or for the relay, of any written more than ``grace`` ago (younger ones
    are their request's to publish); built once for each."""
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
    chosen = (
        OutboxRow.loadbalancer_id == bindparam("loadbalancer_id", type_=Uuid())
        if of_loadbalancer
        else OutboxRow.created_at < func.now() - bindparam("grace", type_=Interval())
    )
    return (
        select(
            OutboxRow.id,
            OutboxRow.op_id,
            OutboxRow.loadbalancer_id,
            OutboxRow.routing_key,
            OutboxRow.payload,
        )
        .where(OutboxRow.published_at.is_(None), chosen, is_head)
        .order_by(OutboxRow.id)
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


class PublishedMarks:
    """Outbox rows whose commands the broker confirmed, marked published together: one
    ``UPDATE`` (autocommit) for all confirmed while the previous one ran."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._confirmed: list[int] = []
        self._collected = asyncio.Event()
        """Set once the marks in ``_confirmed`` are written."""
        self._writing: asyncio.Event | None = None
        """Set once the marks being written now are."""
        self._marking: asyncio.Task[None] | None = None

    def add(self, outbox_id: int) -> None:
        self._confirmed.append(outbox_id)
        if self._marking is None:
            self._marking = asyncio.create_task(self._mark())

    async def _mark(self) -> None:
        try:
            while self._confirmed:
                done, self._confirmed = self._confirmed, []
                self._writing, self._collected = self._collected, asyncio.Event()
                try:
                    async with self._engine.connect() as connection:
                        await connection.execute(_MARK_PUBLISHED, {"done": done})
                except Exception as exc:
                    log.warning(
                        "marking commands published failed; the relay sends them again: %s", exc
                    )
                finally:
                    self._writing.set()
        finally:
            self._writing = None
            self._marking = None

    async def settled(self) -> None:
        """Once the marks asked for so far are written (or failed); not those asked for later,
        which under load keep the marking going."""
        if self._marking is None:
            return
        await (self._collected if self._confirmed else self._writing or self._collected).wait()
