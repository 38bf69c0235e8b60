"""Publishing results: persistent, confirmed by the broker, refused if nothing would route them."""

import asyncio

from aio_pika.abc import AbstractExchange, AbstractRobustChannel
from aio_pika.exceptions import CONNECTION_EXCEPTIONS

from shared.broker import Broker, BrokerUnavailable, json_message
from shared.messages import Result
from shared.topology import RESULTS_ROUTING_KEY, Names


class ResultNotPublished(Exception):
    """The broker did not confirm the result; the command must not be acknowledged."""


class ResultPublisher:
    """Publishes results on one channel with publisher confirms, opened on first use."""

    def __init__(self, broker: Broker, names: Names, timeout: float) -> None:
        self._broker = broker
        self._names = names
        self._timeout = timeout
        self._channel: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._opening = asyncio.Lock()

    async def publish(self, result: Result) -> None:
        """Return once the broker confirms ``result``, else raise :class:`ResultNotPublished`."""
        message = json_message(result, message_id=str(result.op_id))
        try:
            async with asyncio.timeout(self._timeout):
                exchange = await self._results_exchange()
                await exchange.publish(message, routing_key=RESULTS_ROUTING_KEY, mandatory=True)
        except TimeoutError:
            raise ResultNotPublished(
                f"the broker did not confirm the result within {self._timeout:g} s"
            ) from None
        except (BrokerUnavailable, *CONNECTION_EXCEPTIONS) as exc:
            raise ResultNotPublished(f"{type(exc).__name__}: {exc}") from exc

    async def _results_exchange(self) -> AbstractExchange:
        async with self._opening:
            if self._channel is None or self._channel.is_closed or self._exchange is None:
                await self._broker.ready.wait()
                self._channel = await self._broker.channel()
                self._exchange = await self._channel.get_exchange(
                    self._names.results_exchange, ensure=False
                )
            return self._exchange

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()
        self._channel = None
        self._exchange = None
