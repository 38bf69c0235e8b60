"""One robust connection to RabbitMQ that a service can start while the broker is down.

aio-pika's robust connection reconnects (and restores consumers) once it has
connected; :class:`Broker` adds the first connection, retried in the
background, so that a service starts, answers health checks and keeps its
outbox while the broker is away. Given the URLs of a cluster's nodes, each
attempt goes to the next node (:class:`ClusterConnection`).
"""

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aio_pika.robust_connection import RobustConnection
from pydantic import BaseModel
from yarl import URL

log = logging.getLogger(__name__)

OnConnected = Callable[[AbstractRobustConnection], Awaitable[None]]
CONNECT_TIMEOUT = 5.0


class BrokerUnavailable(Exception):
    """The broker cannot be reached now; the caller keeps its work for later."""


class ClusterConnection(RobustConnection):
    """A robust connection that moves to the next node each time it loses one.

    aio-pika reconnects to the one URL it was given; this connection turns to the
    next of ``nodes`` (round robin) whenever its connection closes or a reconnect
    fails, so that a client leaves a node that is gone within one reconnect.
    ``nodes[0]`` is the node of ``url``.
    """

    def __init__(self, url: URL, *args: Any, nodes: Sequence[str], **kwargs: Any) -> None:
        super().__init__(url, *args, **kwargs)
        self._nodes = [URL(node) for node in nodes]
        self._next = 1

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        self.url = self._nodes[self._next % len(self._nodes)]
        self._next += 1
        await super()._on_connection_close(closing)


class Broker:
    def __init__(
        self, urls: Sequence[str], on_connected: OnConnected, retry_interval: float = 1.0
    ) -> None:
        self._urls = list(urls)
        self._on_connected = on_connected
        self._retry_interval = retry_interval
        self._connection: AbstractRobustConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self.ready = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect(), name="broker-connect")

    async def _connect(self) -> None:
        """Connect and set up; on any failure close what was opened and try again.

        ``ready`` is set only after ``on_connected`` returned, so consumers it
        starts may see messages before :meth:`channel` works: they wait on ``ready``.
        A connection cancelled (by :meth:`close`) before it was set up is closed
        too: aio-pika's reconnecting task would outlive the cancellation.
        """
        for attempt in itertools.count():
            first = attempt % len(self._urls)
            nodes = self._urls[first:] + self._urls[:first]
            connection = ClusterConnection(
                URL(nodes[0]), nodes=nodes, reconnect_interval=self._retry_interval
            )
            try:
                await connection.connect(timeout=CONNECT_TIMEOUT)
                await self._on_connected(connection)
            except asyncio.CancelledError:
                await connection.close()
                raise
            except Exception as exc:
                log.warning("broker not usable, retrying: %s: %s", type(exc).__name__, exc)
                with contextlib.suppress(Exception):
                    await connection.close()
                await asyncio.sleep(self._retry_interval)
                continue
            self._connection = connection
            self.ready.set()
            log.info("connected to the broker")
            return

    @property
    def is_connected(self) -> bool:
        """Connected now: a robust connection that is reconnecting is not."""
        connection = self._connection
        return connection is not None and connection.connected.is_set() and not connection.is_closed

    async def channel(self, *, prefetch: int | None = None) -> AbstractRobustChannel:
        """A new channel with publisher confirms; unroutable publishes raise."""
        if self._connection is None:
            raise BrokerUnavailable("not connected to the broker yet")
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        if prefetch is not None:
            await channel.set_qos(prefetch_count=prefetch)
        return channel

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._connection is not None:
            await self._connection.close()


def json_message(model: BaseModel, *, message_id: str) -> aio_pika.Message:
    """A persistent JSON message carrying ``model``."""
    return aio_pika.Message(
        model.model_dump_json().encode(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message_id,
    )
