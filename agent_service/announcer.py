"""Provider announcements: the agent tells the API which drivers it has and what each can do.

The first announcement goes out on the connection being set up, before the agent
consumes any command (``Broker.ready`` is not set yet, so not through the
:class:`~agent_service.outbound.Publisher`); a failure there makes the broker
connection be tried again. Later ones follow every ``LBAAS_ANNOUNCE_INTERVAL``, so an
API whose database was reset, or that missed one, learns the providers again.
"""

import asyncio
import logging
from datetime import UTC, datetime

from aio_pika.abc import AbstractRobustConnection

from agent_service.drivers import DriverRegistry
from agent_service.outbound import NotPublished, Publisher
from shared.broker import json_message
from shared.capabilities import ProviderDeclaration
from shared.messages import ProviderAnnouncement
from shared.topology import PROVIDERS_ROUTING_KEY, Names

log = logging.getLogger(__name__)


class Announcer:
    def __init__(
        self,
        registry: DriverRegistry,
        publisher: Publisher,
        names: Names,
        *,
        agent_id: str,
        interval: float,
        timeout: float,
    ) -> None:
        self._registry = registry
        self._publisher = publisher
        self._names = names
        self._agent_id = agent_id
        self._interval = interval
        self._timeout = timeout
        self._declared: list[ProviderDeclaration] | None = None

    def announcement(self) -> ProviderAnnouncement | None:
        """What to announce now; None when no installed driver declares itself a provider."""
        if self._declared is None:
            self._declared = self._registry.declarations()
        if not self._declared:
            return None
        return ProviderAnnouncement(
            agent_id=self._agent_id, announced_at=datetime.now(UTC), providers=self._declared
        )

    async def announce_on(self, connection: AbstractRobustConnection) -> None:
        """The first announcement, on its own confirmed channel of ``connection``."""
        announcement = self.announcement()
        if announcement is None:
            log.warning("no installed driver declares itself a provider: nothing to announce")
            return
        async with asyncio.timeout(self._timeout):
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            async with channel:
                exchange = await channel.get_exchange(self._names.providers_exchange, ensure=False)
                await exchange.publish(
                    json_message(announcement, message_id=self._agent_id),
                    routing_key=PROVIDERS_ROUTING_KEY,
                    mandatory=True,
                )
        log.info(
            "announced providers %s",
            ", ".join(provider.name for provider in announcement.providers),
            extra={"agent_id": self._agent_id},
        )

    async def run(self) -> None:
        """Forever: announce again every interval (a failed one is retried at the next)."""
        while True:
            await asyncio.sleep(self._interval)
            announcement = self.announcement()
            if announcement is None:
                continue
            try:
                await self._publisher.publish_announcement(announcement)
            except NotPublished as exc:
                log.warning("provider announcement not published: %s", exc)
