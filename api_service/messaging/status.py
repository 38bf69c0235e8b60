"""Status reports in: each is applied by ``services.health`` in one transaction, then acked.

A report that does not parse, or is not signed with its device's report secret,
is dead-lettered with a log line.
"""

import logging
from datetime import UTC, datetime

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from api_service.db.engine import SessionFactory
from api_service.secret_keys import SecretKeys
from api_service.services.health import StaleReport, record_report
from shared.messages import StatusReport
from shared.topology import Names, passive_topology

log = logging.getLogger(__name__)


class StatusConsumer:
    def __init__(self, names: Names, sessions: SessionFactory, keys: SecretKeys) -> None:
        self._names = names
        self._sessions = sessions
        self._keys = keys

    async def on_connected(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=16)
        topology = await passive_topology(channel, self._names)
        await topology.status_queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        received_at = datetime.now(UTC)
        try:
            report = StatusReport.model_validate_json(message.body)
        except ValidationError as exc:
            log.error(
                "dead-lettering a malformed status report: %s",
                exc.errors(include_url=False, include_input=False)[:3],
                extra={"queue": self._names.status_queue},
            )
            await message.reject(requeue=False)
            return
        if not self._keys.signs_reports(report.device_id, report.report_secret.get_secret_value()):
            log.error(
                "dead-lettering a status report without its device's report secret",
                extra={"device_id": report.device_id, "agent_id": report.agent_id},
            )
            await message.reject(requeue=False)
            return
        try:
            async with self._sessions.begin() as session:
                await record_report(session, report, received_at)
        except StaleReport:
            pass
        except Exception:
            log.exception("status report not recorded", extra={"device_id": report.device_id})
            await message.reject(requeue=False)
            return
        await message.ack()
