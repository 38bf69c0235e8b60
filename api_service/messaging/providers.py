"""Provider announcements in: each is stored by ``services.providers`` in one transaction, then
acked.

An announcement that does not parse is dead-lettered with a log line, and so is one
that cannot be stored (the next announcement of the agent replaces it).
"""

import logging

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from api_service.db.engine import SessionFactory
from api_service.services.providers import record_announcement
from shared.messages import ProviderAnnouncement
from shared.topology import Names, passive_topology

log = logging.getLogger(__name__)


class ProviderConsumer:
    """Consumes the agents' provider announcements into the providers table."""

    def __init__(self, names: Names, sessions: SessionFactory) -> None:
        self._names = names
        self._sessions = sessions

    async def on_connected(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=4)
        topology = await passive_topology(channel, self._names)
        await topology.providers_queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            announcement = ProviderAnnouncement.model_validate_json(message.body)
        except ValidationError as exc:
            log.error(
                "dead-lettering a malformed provider announcement: %s",
                exc.errors(include_url=False, include_input=False)[:3],
                extra={"queue": self._names.providers_queue},
            )
            await message.reject(requeue=False)
            return
        providers = ", ".join(provider.name for provider in announcement.providers)
        try:
            async with self._sessions.begin() as session:
                await record_announcement(session, announcement)
        except Exception:
            log.exception(
                "dead-lettering a provider announcement that could not be stored",
                extra={"agent_id": announcement.agent_id},
            )
            await message.reject(requeue=False)
            return
        log.info("providers announced: %s", providers, extra={"agent_id": announcement.agent_id})
        await message.ack()
