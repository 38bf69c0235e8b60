"""Results in: consume ``<prefix>.results`` and apply each result in one transaction, then ack.

A message that does not parse, or that names no operation it could finish, is
dead-lettered with a log line. While the database is unreachable the message
is held (not acked, not requeued) and retried, so results are never dropped
into the dead-letter queue by an outage.
"""

import asyncio
import logging
from datetime import UTC, datetime

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from opentelemetry.trace import SpanKind
from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from api_service.db.engine import SessionFactory
from api_service.metrics import Metrics
from api_service.services.results import Applied, Verdict, apply_result
from shared.messages import Result
from shared.topology import Names, passive_topology
from shared.tracing import context_of, tracer

log = logging.getLogger(__name__)

_DB_RETRY = 1.0


class ResultConsumer:
    def __init__(
        self, names: Names, sessions: SessionFactory, *, prefetch: int, metrics: Metrics
    ) -> None:
        self._metrics = metrics
        self._names = names
        self._sessions = sessions
        self._prefetch = prefetch

    async def on_connected(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        topology = await passive_topology(channel, self._names)
        await topology.results_queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            result = Result.model_validate_json(message.body)
        except ValidationError as exc:
            log.error(
                "dead-lettering a malformed result: %s",
                exc.errors(include_url=False, include_input=False)[:3],
                extra={"queue": self._names.results_queue},
            )
            await message.reject(requeue=False)
            return
        context = {
            "op_id": result.op_id,
            "loadbalancer_id": result.loadbalancer_id,
            "device_id": result.device_id,
            "generation": result.generation,
            "agent_id": result.agent_id,
        }
        try:
            with tracer().start_as_current_span(
                "apply result",
                context=context_of(result.trace_context),
                kind=SpanKind.CONSUMER,
                attributes={"lbaas.loadbalancer_id": str(result.loadbalancer_id)},
            ):
                applied = await self._apply(result)
        except Exception:
            log.exception("dead-lettering a result that could not be applied", extra=context)
            await message.reject(requeue=False)
            return
        if applied.verdict is Verdict.UNKNOWN:
            log.error("dead-lettering a result that matches no operation", extra=context)
            await message.reject(requeue=False)
            return
        log.info("result %s: %s", result.outcome.value, applied.verdict.value, extra=context)
        self._observe(result, applied)
        await message.ack()

    def _observe(self, result: Result, applied: Applied) -> None:
        m = self._metrics
        m.results.labels(result.outcome.value, applied.verdict.value).inc()
        m.result_lag.observe(max((datetime.now(UTC) - result.finished_at).total_seconds(), 0))
        operation = applied.operation
        if applied.verdict is Verdict.APPLIED and operation is not None:
            m.operations.labels(operation.action, operation.status).inc()
            elapsed = (datetime.now(UTC) - operation.created_at).total_seconds()
            m.operation_duration.labels(operation.action).observe(max(elapsed, 0))

    async def _apply(self, result: Result) -> Applied:
        while True:
            try:
                async with self._sessions.begin() as session:
                    return await apply_result(session, result)
            except (OperationalError, InterfaceError, OSError) as exc:
                log.warning("database unavailable, holding the result: %s", exc)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                log.warning("database connection lost, holding the result: %s", exc)
            await asyncio.sleep(_DB_RETRY)
