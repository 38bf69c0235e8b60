"""Messages out of the agent: results, status reports and provider announcements, persistent
and confirmed by the broker.

A publish that nothing would route is refused (``mandatory``), never lost silently.
"""

import asyncio

from aio_pika.abc import AbstractExchange, AbstractRobustChannel
from aio_pika.exceptions import CONNECTION_EXCEPTIONS
from pydantic import BaseModel

from shared.broker import Broker, BrokerUnavailable, json_message
from shared.messages import ProviderAnnouncement, Result, StatusReport
from shared.topology import PROVIDERS_ROUTING_KEY, RESULTS_ROUTING_KEY, STATUS_ROUTING_KEY, Names


class NotPublished(Exception):
    """The broker did not confirm the message; a command must not be acknowledged."""


class Publisher:
    """Publishes on one channel with publisher confirms, opened on first use."""

    def __init__(self, broker: Broker, names: Names, timeout: float) -> None:
        self._broker = broker
        self._names = names
        self._timeout = timeout
        self._channel: AbstractRobustChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}
        self._opening = asyncio.Lock()

    async def publish(self, result: Result) -> None:
        """Return once the broker confirms ``result``, else raise :class:`NotPublished`."""
        await self._publish(
            result, self._names.results_exchange, RESULTS_ROUTING_KEY, str(result.op_id)
        )

    async def publish_status(self, report: StatusReport) -> None:
        await self._publish(
            report, self._names.status_exchange, STATUS_ROUTING_KEY, str(report.device_id)
        )

    async def publish_announcement(self, announcement: ProviderAnnouncement) -> None:
        await self._publish(
            announcement,
            self._names.providers_exchange,
            PROVIDERS_ROUTING_KEY,
            announcement.agent_id,
        )

    async def _publish(
        self, model: BaseModel, exchange_name: str, routing_key: str, message_id: str
    ) -> None:
        message = json_message(model, message_id=message_id)
        try:
            async with asyncio.timeout(self._timeout):
                exchange = await self._exchange(exchange_name)
                await exchange.publish(message, routing_key=routing_key, mandatory=True)
        except TimeoutError:
            raise NotPublished(
                f"the broker did not confirm the message within {self._timeout:g} s"
            ) from None
        except (BrokerUnavailable, *CONNECTION_EXCEPTIONS) as exc:
            raise NotPublished(f"{type(exc).__name__}: {exc}") from exc

    async def _exchange(self, name: str) -> AbstractExchange:
        async with self._opening:
            if self._channel is None or self._channel.is_closed:
                await self._broker.ready.wait()
                self._channel = await self._broker.channel()
                self._exchanges = {}
            if name not in self._exchanges:
                self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
            return self._exchanges[name]

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._channel = None
        self._exchanges = {}
