"""What the database holds now, for the census gauges: objects by status, devices, outbox age."""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.models import Device, OutboxRow
from api_service.services.quotas import KINDS


@dataclass(frozen=True)
class Census:
    objects: dict[tuple[str, str], int]
    """(kind, provisioning status) → count."""
    devices: dict[str, int]
    """Operating status (``UNKNOWN`` before any report) → count."""
    outbox_age: float
    """Seconds since the oldest unpublished command was committed; 0 when none is waiting."""


async def take_census(session: AsyncSession) -> Census:
    objects: dict[tuple[str, str], int] = {}
    for kind, model in KINDS.items():
        rows = await session.execute(
            select(model.provisioning_status, func.count()).group_by(model.provisioning_status)
        )
        for status, count in rows:
            objects[kind, status] = count
    devices = {
        status or "UNKNOWN": count
        for status, count in (
            await session.execute(
                select(Device.operating_status, func.count()).group_by(Device.operating_status)
            )
        )
    }
    oldest = await session.scalar(
        select(func.extract("epoch", func.now() - func.min(OutboxRow.created_at))).where(
            OutboxRow.published_at.is_(None)
        )
    )
    return Census(objects, devices, float(oldest or 0))
