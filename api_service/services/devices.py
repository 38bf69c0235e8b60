"""Devices (admin extension): the appliances load balancers are placed on; each serves the
VIP subnet of its ``vip_cidr`` (``services.networks``).

Every ``sync_interval`` the API tells the agent active on each device's shard
that the device exists (a ``DeviceSync``, published by ``messaging.commands``),
so that an agent that took a shard over watches its devices before any
command reaches it, with the load balancers the database places on it (an
``Inventory``: what the device holds beyond it is an orphan the agent removes).
Each device is claimed by one API replica per interval.
"""

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from pydantic import SecretStr
from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.engine import SessionFactory
from api_service.db.models import Device, LoadBalancer
from api_service.errors import Conflict, NotFound
from api_service.schemas.devices import DeviceCreate, DeviceUpdate
from api_service.secret_keys import SecretKeys
from api_service.services.networks import move_range, serve, served_subnet_ids
from shared.messages import DeviceSpec, DeviceSync, Inventory
from shared.topology import shard_for


@dataclass(frozen=True)
class DeviceService:
    sessions: SessionFactory
    keys: SecretKeys

    async def list(self) -> list[Device]:
        async with self.sessions() as session:
            return list(
                await session.scalars(select(Device).order_by(Device.created_at, Device.id))
            )

    async def get(self, device_id: UUID) -> Device:
        async with self.sessions() as session:
            return await get_device(session, device_id)

    async def create(self, body: DeviceCreate) -> Device:
        device = Device(id=uuid4(), loadbalancer_count=0, **_columns(body, self.keys))
        try:
            async with self.sessions.begin() as session:
                session.add(device)
                await session.flush()
                await serve(session, device.id, str(device.vip_cidr), body.vip_subnet_ids)
        except IntegrityError:
            raise Conflict(f"A device named {body.name!r} already exists.") from None
        return device

    async def update(self, device_id: UUID, body: DeviceUpdate) -> Device:
        changes = _columns(body, self.keys, given_only=True)
        try:
            async with self.sessions.begin() as session:
                device = await get_device(session, device_id, lock=True)
                _check_hosted_still_fit(device, changes)
                old_cidr = str(device.vip_cidr)
                for field, value in changes.items():
                    setattr(device, field, value)
                if body.vip_subnet_ids is not None:
                    await serve(session, device.id, str(device.vip_cidr), body.vip_subnet_ids)
                elif str(device.vip_cidr) != old_cidr:
                    await move_range(session, device.id, old_cidr, str(device.vip_cidr))
        except IntegrityError:
            raise Conflict(f"A device named {body.name!r} already exists.") from None
        return device

    async def subnets(self, device_ids: Sequence[UUID]) -> Mapping[UUID, Sequence[UUID]]:
        """The subnets each device serves."""
        async with self.sessions() as session:
            return await served_subnet_ids(session, device_ids)

    async def delete(self, device_id: UUID) -> None:
        async with self.sessions.begin() as session:
            device = await get_device(session, device_id, lock=True)
            if device.loadbalancer_count:
                raise Conflict(
                    f"Device {device_id} still hosts {device.loadbalancer_count} load balancer(s); "
                    "delete them or move them away first."
                )
            await session.delete(device)


def _columns(
    body: DeviceCreate | DeviceUpdate, keys: SecretKeys, *, given_only: bool = False
) -> dict[str, object]:
    """The body as column values, the secret sealed."""
    columns = body.model_dump(
        exclude_unset=given_only, exclude_none=given_only, exclude={"vip_subnet_ids"}
    )
    if body.management_secret is not None:
        columns["management_secret"] = keys.seal(body.management_secret.get_secret_value())
    return columns


def device_spec(device: Device, keys: SecretKeys) -> DeviceSpec:
    """What the agent is told of a device: how to reach it, with which secret, and how to
    sign its reports."""
    sealed = device.management_secret
    return DeviceSpec(
        id=device.id,
        name=device.name,
        driver=device.driver,
        management_url=device.management_url,
        secret=None if sealed is None else SecretStr(keys.open(sealed)),
        report_secret=SecretStr(keys.report_secret(device.id)),
    )


async def claim_syncs(
    sessions: SessionFactory, keys: SecretKeys, shards: int, interval: float
) -> list[tuple[int, DeviceSync]]:
    """A sync, with its shard and inventory, for every device no replica synced within the
    interval."""
    async with sessions.begin() as session:
        taken_at = await session.scalar(select(func.now()))
        devices = (
            await session.scalars(
                update(Device)
                .where(
                    or_(
                        Device.synced_at.is_(None),
                        Device.synced_at < func.now() - timedelta(seconds=interval * 0.9),
                    )
                )
                .values(synced_at=func.now(), updated_at=Device.updated_at)
                .returning(Device)
            )
        ).all()
        hosted: defaultdict[UUID, list[UUID]] = defaultdict(list)
        if devices:
            rows = await session.execute(
                select(LoadBalancer.device_id, LoadBalancer.id).where(
                    LoadBalancer.device_id.in_([device.id for device in devices])
                )
            )
            for device_id, loadbalancer_id in rows:
                hosted[device_id].append(loadbalancer_id)
    assert taken_at is not None
    now = datetime.now(UTC)
    return [
        (
            shard_for(device.id, shards),
            DeviceSync(
                device=device_spec(device, keys),
                interval=interval,
                issued_at=now,
                inventory=Inventory(taken_at=taken_at, loadbalancers=hosted[device.id]),
            ),
        )
        for device in devices
    ]


async def get_device(session: AsyncSession, device_id: UUID, *, lock: bool = False) -> Device:
    query = select(Device).where(Device.id == device_id)
    device = await session.scalar(query.with_for_update(of=Device) if lock else query)
    if device is None:
        raise NotFound("Device", device_id)
    return device


def _check_hosted_still_fit(device: Device, changes: dict[str, object]) -> None:
    """A device's driver is fixed while it hosts load balancers. (Its VIP range may change:
    it keeps serving the subnets its load balancers have VIPs on, ``networks.move_range``.)"""
    hosted = device.loadbalancer_count
    if hosted and "driver" in changes and changes["driver"] != device.driver:
        raise Conflict(f"Device {device.id} hosts {hosted} load balancer(s); its driver is fixed.")
