"""Consuming commands from every shard queue; one task per message, one device at a time.

A command is acknowledged only after its result is confirmed by the broker,
so a crash anywhere before that redelivers it (drivers are idempotent). A
message that is not a valid command is rejected without requeue: the queue
dead-letters it, since requeueing would block the shard (single active
consumer) for nothing. The API's device syncs (AMQP type ``device-sync``)
travel on the same queues and tell the agent which devices it looks after.
"""

import asyncio
import logging
from functools import partial

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from pydantic import ValidationError

from agent_service.devices import Devices
from agent_service.executor import CommandExecutor, log_context
from agent_service.locks import DeviceLocks
from agent_service.metrics import AgentMetrics
from agent_service.outbound import NotPublished, Publisher
from shared.logging import REQUEST_ID
from shared.messages import DEVICE_SYNC_TYPE, Command, DeviceSync, Result
from shared.status import Outcome
from shared.topology import Names, passive_topology

log = logging.getLogger(__name__)

FIRST_PUBLISH_RETRY = 0.5
MAX_PUBLISH_RETRY = 30.0
CANCEL_TIMEOUT = 5.0


class CommandConsumer:
    """Turns each delivered command into a task; see the module docstring for the rules."""

    def __init__(
        self,
        names: Names,
        executor: CommandExecutor,
        publisher: Publisher,
        locks: DeviceLocks,
        devices: Devices,
        metrics: AgentMetrics,
        *,
        prefetch: int,
    ) -> None:
        self._names = names
        self._devices = devices
        self._metrics = metrics
        self._executor = executor
        self._publisher = publisher
        self._locks = locks
        self._prefetch = prefetch
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self, connection: AbstractRobustConnection) -> None:
        """Look the topology up and consume every shard queue on one channel.

        The API declares the topology; the agent's broker user may not, so a
        queue that does not exist yet fails the start, which the broker
        connection retries. The prefetch applies to each consumer, i.e. to each
        shard queue. The robust channel looks the queues up again and restores
        the consumers after a reconnection.
        """
        channel = await connection.channel()
        channel.close_callbacks.add(self._forget_devices)
        await channel.set_qos(prefetch_count=self._prefetch)
        topology = await passive_topology(channel, self._names)
        for queue in topology.command_queues:
            if self._stopping:
                return
            tag = await queue.consume(partial(self._on_message, queue.name))
            self._consumers.append((queue, tag))
        log.info("consuming %d command queues", len(self._consumers))

    async def stop_consuming(self) -> None:
        """Cancel every consumer, so that the broker hands the shards to other agents.

        Bounded by ``CANCEL_TIMEOUT`` in all: an unreachable broker cancels them
        anyway when the connection goes.
        """
        self._stopping = True
        consumers, self._consumers = self._consumers, []
        if not consumers:
            return
        cancels = [queue.cancel(tag) for queue, tag in consumers]
        try:
            async with asyncio.timeout(CANCEL_TIMEOUT):
                outcomes = await asyncio.gather(*cancels, return_exceptions=True)
        except TimeoutError:
            log.warning("the broker did not confirm the consumer cancellations in time")
            return
        for (queue, _), outcome in zip(consumers, outcomes, strict=True):
            if isinstance(outcome, Exception):
                log.warning(
                    "could not cancel the consumer: %r", outcome, extra={"queue": queue.name}
                )

    async def drain(self, grace: float) -> None:
        """Let in-flight commands finish for up to ``grace`` s, then cancel them.

        A cancelled command is not acknowledged: the broker redelivers it once
        the connection is closed.
        """
        if self._tasks:
            log.info("waiting up to %g s for %d commands", grace, len(self._tasks))
            await asyncio.wait(set(self._tasks), timeout=grace)
        unfinished = set(self._tasks)
        for task in unfinished:
            task.cancel()
        if unfinished:
            log.warning(
                "%d commands unfinished at shutdown; they will be redelivered", len(unfinished)
            )
            await asyncio.gather(*unfinished, return_exceptions=True)

    async def _on_message(self, queue: str, message: AbstractIncomingMessage) -> None:
        """Start the message's task at once, so that tasks start in arrival order."""
        if self._stopping:
            return
        task = asyncio.create_task(
            self._handle(queue, message, self._devices.term), name=f"command-{queue}"
        )
        self._tasks.add(task)
        self._metrics.in_flight.set(len(self._tasks))
        task.add_done_callback(self._finished)

    def _finished(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        self._metrics.in_flight.set(len(self._tasks))

    def _forget_devices(self, *_: object) -> None:
        """The shards may go to other agents while the channel is down: forget their devices."""
        if len(self._devices):
            log.info("consumer channel closed; forgetting %d devices", len(self._devices))
        self._devices.clear()

    async def _handle(self, queue: str, message: AbstractIncomingMessage, term: int) -> None:
        """``term``: the :attr:`Devices.term` the message arrived in."""
        if message.type == DEVICE_SYNC_TYPE:
            await self._sync(queue, message)
            return
        try:
            command = Command.model_validate_json(message.body)
        except ValidationError as exc:
            await self._dead_letter(queue, message, _summarize(exc, "Command"))
            return
        if message.redelivered:
            log.info("command redelivered", extra=log_context(command))
        self._devices.heard_of(command.device, term=term)
        REQUEST_ID.set(command.request_id)
        try:
            async with self._locks.hold(command.device_id):
                if term != self._devices.term:
                    log.info(
                        "not applied: its channel closed while it waited, so the broker "
                        "gives it to the shard's next agent",
                        extra=log_context(command),
                    )
                    return
                result = await self._executor.execute(command, term=term)
                _log_result(command, result)
                if await self._publish(result, message, command):
                    await _acknowledge(message, command)
        except Exception:
            log.exception("command handling failed unexpectedly", extra=log_context(command))
            await self._dead_letter(queue, message, "the agent failed to handle it")

    async def _publish(
        self, result: Result, message: AbstractIncomingMessage, command: Command
    ) -> bool:
        """Publish until confirmed; give up (False) once the command will be redelivered anyway."""
        delay = FIRST_PUBLISH_RETRY
        while True:
            try:
                await self._publisher.publish(result)
                return True
            except NotPublished as exc:
                if self._stopping or _channel_closed(message):
                    log.warning(
                        "result not published; the command will be redelivered: %s",
                        exc,
                        extra=log_context(command),
                    )
                    return False
                log.warning(
                    "result not published, retrying in %g s: %s",
                    delay,
                    exc,
                    extra=log_context(command),
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_PUBLISH_RETRY)

    async def _sync(self, queue: str, message: AbstractIncomingMessage) -> None:
        try:
            sync = DeviceSync.model_validate_json(message.body)
        except ValidationError as exc:
            await self._dead_letter(queue, message, _summarize(exc, "DeviceSync"))
            return
        self._devices.synced(sync)
        try:
            await message.ack()
        except CONNECTION_EXCEPTIONS as exc:
            log.debug("could not acknowledge a device sync: %s", exc, extra={"queue": queue})

    async def _dead_letter(self, queue: str, message: AbstractIncomingMessage, reason: str) -> None:
        log.error(
            "rejected message %s to the dead-letter queue: %s",
            message.message_id or f"#{message.delivery_tag}",
            reason,
            extra={"queue": queue},
        )
        try:
            await message.reject(requeue=False)
        except CONNECTION_EXCEPTIONS as exc:
            log.warning("could not reject the message: %s", exc, extra={"queue": queue})


async def _acknowledge(message: AbstractIncomingMessage, command: Command) -> None:
    try:
        await message.ack()
    except CONNECTION_EXCEPTIONS as exc:
        log.warning(
            "could not acknowledge the command; it will be redelivered and applied again: %s",
            exc,
            extra=log_context(command),
        )


def _channel_closed(message: AbstractIncomingMessage) -> bool:
    try:
        return message.channel.is_closed
    except CONNECTION_EXCEPTIONS:
        return True


def _summarize(error: ValidationError, kind: str, limit: int = 3) -> str:
    """The first few schema errors on one line."""
    details = [
        f"{'.'.join(str(part) for part in item['loc']) or 'body'}: {item['msg']}"
        for item in error.errors()[:limit]
    ]
    more = error.error_count() - limit
    return f"not a valid {kind}: " + "; ".join(details) + (f" (+{more} more)" if more > 0 else "")


def _log_result(command: Command, result: Result) -> None:
    elapsed_ms = (result.finished_at - result.started_at).total_seconds() * 1000
    if result.outcome is Outcome.ACTIVE:
        log.info(
            "%s %s on %s: ACTIVE in %.0f ms",
            command.action,
            command.loadbalancer_id,
            command.driver,
            elapsed_ms,
            extra=log_context(command),
        )
    else:
        log.warning(
            "%s %s on %s: ERROR in %.0f ms: %s",
            command.action,
            command.loadbalancer_id,
            command.driver,
            elapsed_ms,
            result.error,
            extra=log_context(command),
        )
