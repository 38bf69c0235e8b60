"""Status reports in: each report's counters become the stats of the load balancers it names.

Only load balancers that are on the reporting device are updated, and an older
report never overwrites a newer one. A report that does not parse is
dead-lettered with a log line.
"""

import logging

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.engine import SessionFactory
from api_service.db.models import Device, LoadBalancer, LoadBalancerStats
from shared.messages import Counters, StatusReport
from shared.status import OperatingStatus
from shared.topology import Names, passive_topology

log = logging.getLogger(__name__)


class StatusConsumer:
    def __init__(self, names: Names, sessions: SessionFactory) -> None:
        self._names = names
        self._sessions = sessions

    async def on_connected(self, connection: AbstractRobustConnection) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=16)
        topology = await passive_topology(channel, self._names)
        await topology.status_queue.consume(self._on_message)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
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
        try:
            async with self._sessions.begin() as session:
                await record_report(session, report)
        except Exception:
            log.exception("status report not recorded", extra={"device_id": report.device_id})
            await message.reject(requeue=False)
            return
        await message.ack()


async def record_report(session: AsyncSession, report: StatusReport) -> None:
    await session.execute(
        update(Device)
        .where(Device.id == report.device_id)
        .values(operating_status=OperatingStatus.ONLINE.value)
    )
    if not report.loadbalancers:
        return
    hosted = set(
        await session.scalars(
            select(LoadBalancer.id).where(
                LoadBalancer.id.in_(list(report.loadbalancers)),
                LoadBalancer.device_id == report.device_id,
            )
        )
    )
    rows = [
        {"loadbalancer_id": lb_id, "reported_at": report.reported_at, **counters.model_dump()}
        for lb_id, counters in report.loadbalancers.items()
        if lb_id in hosted
    ]
    if not rows:
        return
    statement = insert(LoadBalancerStats).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[LoadBalancerStats.loadbalancer_id],
            set_={
                name: statement.excluded[name] for name in ("reported_at", *Counters.model_fields)
            },
            where=LoadBalancerStats.reported_at < statement.excluded.reported_at,
        )
    )
