"""What the database holds sealed (device secrets, queued commands), re-sealed under the first
of ``LBAAS_SECRET_KEYS``: the step between adding a new key and dropping the old one."""

from dataclasses import dataclass

from sqlalchemy import select

from api_service.db.engine import SessionFactory
from api_service.db.models import Device, OutboxRow
from api_service.secret_keys import SecretKeys


@dataclass(frozen=True)
class Resealed:
    devices: int
    commands: int


async def reseal(sessions: SessionFactory, keys: SecretKeys) -> Resealed:
    """In one transaction, with the rows locked; raises ``Unsealable`` (changing nothing) if a
    secret is sealed under none of the keys."""
    async with sessions.begin() as session:
        devices = await session.scalars(
            select(Device).where(Device.management_secret.is_not(None)).with_for_update(of=Device)
        )
        device_count = 0
        for device in devices:
            assert device.management_secret is not None
            device.management_secret = keys.reseal(device.management_secret)
            device_count += 1
        rows = await session.scalars(
            select(OutboxRow).where(OutboxRow.published_at.is_(None)).with_for_update()
        )
        command_count = 0
        for row in rows:
            row.payload = keys.reseal(row.payload)
            command_count += 1
    return Resealed(device_count, command_count)
