"""The agent: a broker connection, the command consumer, the result publisher and the drivers."""

import asyncio
import logging

from aio_pika.abc import AbstractRobustConnection

from agent_service.announcer import Announcer
from agent_service.consumer import CommandConsumer
from agent_service.devices import Devices
from agent_service.drivers import DriverRegistry
from agent_service.executor import CommandExecutor
from agent_service.locks import DeviceLocks
from agent_service.metrics import AgentMetrics
from agent_service.outbound import Publisher
from agent_service.settings import AgentSettings
from agent_service.status import DeviceWatch
from shared.broker import Broker
from shared.topology import Names

log = logging.getLogger(__name__)

DISCONNECT_TIMEOUT = 5.0


class Agent:
    """Start it, and it consumes commands as soon as (and whenever) the broker is reachable.

    ``registry`` replaces the drivers found through entry points (for tests).
    """

    def __init__(self, settings: AgentSettings, registry: DriverRegistry | None = None) -> None:
        self.settings = settings
        self.names = Names(settings.queue_prefix, settings.command_shards)
        self.registry = registry or DriverRegistry(settings)
        self.locks = DeviceLocks()
        self.devices = Devices()
        self.metrics = AgentMetrics()
        self.broker = Broker(settings.amqp_urls, self._on_connected)
        self._publisher = Publisher(self.broker, self.names, settings.result_publish_timeout)
        executor = CommandExecutor(
            self.registry,
            self.devices,
            self.metrics,
            settings.agent_id,
            poll_interval=settings.poll_interval,
            driver_timeout=settings.driver_timeout,
            max_parallel=settings.max_parallel,
        )
        self._watch = DeviceWatch(
            self.devices,
            self.registry,
            executor,
            self.locks,
            self._publisher,
            self.metrics,
            agent_id=settings.agent_id,
            interval=settings.status_interval,
            orphan_grace=settings.orphan_grace,
        )
        self._announcer = Announcer(
            self.registry,
            self._publisher,
            self.names,
            agent_id=settings.agent_id,
            interval=settings.announce_interval,
            timeout=settings.result_publish_timeout,
        )
        self._watching: asyncio.Task[None] | None = None
        self._announcing: asyncio.Task[None] | None = None
        self.consumer = CommandConsumer(
            self.names,
            executor,
            self._publisher,
            self.locks,
            self.devices,
            self.metrics,
            prefetch=settings.prefetch,
        )

    def start(self) -> None:
        """Connect in the background (retrying while the broker is down) and start consuming."""
        log.info(
            "agent starting: prefix %s, %d shards, drivers %s",
            self.names.prefix,
            self.names.shards,
            ", ".join(self.registry.names) or "none",
            extra={"agent_id": self.settings.agent_id},
        )
        if self.settings.metrics_port is not None:
            self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
        self.broker.start()
        self._watching = asyncio.create_task(self._watch.run(), name="device-watch")
        self._announcing = asyncio.create_task(self._announcer.run(), name="announcements")

    async def stop(self) -> None:
        """Stop consuming, let in-flight commands finish within the grace period, disconnect."""
        for task in (self._watching, self._announcing):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        await self.consumer.stop_consuming()
        await self.consumer.drain(self.settings.shutdown_grace)
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT):
                await self._publisher.close()
                await self.broker.close()
        except TimeoutError:
            log.warning("the broker did not answer; disconnected without closing cleanly")
        log.info("agent stopped", extra={"agent_id": self.settings.agent_id})

    async def _on_connected(self, connection: AbstractRobustConnection) -> None:
        """Announce the providers first: the API knows what they can do before any command."""
        await self._announcer.announce_on(connection)
        await self.consumer.start(connection)
