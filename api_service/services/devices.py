"""Devices (admin extension): the appliances load balancers are placed on."""

from dataclasses import dataclass
from ipaddress import ip_network
from uuid import UUID, uuid4

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.engine import SessionFactory
from api_service.db.models import Device, LoadBalancer
from api_service.problems import conflict, not_found
from api_service.schemas.devices import DeviceCreate, DeviceUpdate


@dataclass(frozen=True)
class DeviceService:
    sessions: SessionFactory

    async def list(self) -> list[Device]:
        async with self.sessions() as session:
            return list(
                await session.scalars(select(Device).order_by(Device.created_at, Device.id))
            )

    async def get(self, device_id: UUID) -> Device:
        async with self.sessions() as session:
            return await _get(session, device_id)

    async def create(self, body: DeviceCreate) -> Device:
        device = Device(id=uuid4(), loadbalancer_count=0, **body.model_dump())
        try:
            async with self.sessions.begin() as session:
                session.add(device)
        except IntegrityError:
            raise conflict(f"A device named {body.name!r} already exists.") from None
        return device

    async def update(self, device_id: UUID, body: DeviceUpdate) -> Device:
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        try:
            async with self.sessions.begin() as session:
                device = await _get(session, device_id, lock=True)
                await _check_hosted_still_fit(session, device, changes)
                for field, value in changes.items():
                    setattr(device, field, value)
        except IntegrityError:
            raise conflict(f"A device named {body.name!r} already exists.") from None
        return device

    async def delete(self, device_id: UUID) -> None:
        async with self.sessions.begin() as session:
            device = await _get(session, device_id, lock=True)
            if device.loadbalancer_count:
                raise conflict(
                    f"Device {device_id} still hosts {device.loadbalancer_count} load balancer(s); "
                    "delete them or move them away first."
                )
            await session.delete(device)


async def _get(session: AsyncSession, device_id: UUID, *, lock: bool = False) -> Device:
    query = select(Device).where(Device.id == device_id)
    device = await session.scalar(query.with_for_update() if lock else query)
    if device is None:
        raise not_found("Device", device_id)
    return device


async def _check_hosted_still_fit(
    session: AsyncSession, device: Device, changes: dict[str, object]
) -> None:
    """A device's driver and VIP range may change only in ways its load balancers survive."""
    hosted = device.loadbalancer_count
    if not hosted:
        return
    if "driver" in changes and changes["driver"] != device.driver:
        raise conflict(f"Device {device.id} hosts {hosted} load balancer(s); its driver is fixed.")
    if "vip_cidr" in changes:
        network = ip_network(str(changes["vip_cidr"]))
        outside = await session.scalar(
            select(func.count())
            .select_from(LoadBalancer)
            .where(
                LoadBalancer.device_id == device.id,
                ~LoadBalancer.vip_address.op("<<=")(str(network)),
            )
        )
        if outside:
            raise conflict(
                f"{outside} load balancer VIP(s) on device {device.id} lie outside {network}."
            )
