"""Placement: which device hosts a new load balancer, and which VIP it gets."""

from ipaddress import IPv4Address, IPv6Address, ip_network
from uuid import UUID

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from api_service.db.models import Device, LoadBalancer
from api_service.problems import ProblemError, conflict, invalid

IpAddress = IPv4Address | IPv6Address

_PLACEMENT_ATTEMPTS = 5


def _hosted() -> ColumnElement[int]:
    """How many load balancers the device of the enclosing query hosts."""
    return (
        select(func.count())
        .select_from(LoadBalancer)
        .where(LoadBalancer.device_id == Device.id)
        .scalar_subquery()
    )


async def hosted_count(session: AsyncSession, device_id: UUID) -> int:
    count = await session.scalar(
        select(func.count()).select_from(LoadBalancer).where(LoadBalancer.device_id == device_id)
    )
    return count or 0


async def pick_device(session: AsyncSession, provider: str, vip: IpAddress | None) -> Device:
    """Lock and return the enabled device of ``provider`` with the most free capacity.

    The device row stays locked until the caller commits, so concurrent
    creates on one device are counted one after the other.
    """
    known = await session.scalar(select(func.count()).where(Device.driver == provider))
    if not known:
        raise invalid("provider", f"provider {provider!r} is not available")
    free = Device.capacity - _hosted()
    query = select(Device).where(Device.enabled, Device.driver == provider, free > 0)
    if vip is not None:
        in_range = await session.scalar(
            select(func.count()).where(
                Device.driver == provider, Device.vip_cidr.op(">>=")(str(vip))
            )
        )
        if not in_range:
            raise invalid(
                "vip_address",
                f"{vip} is outside the VIP range of every device of provider {provider!r}",
            )
        query = query.where(Device.vip_cidr.op(">>=")(str(vip)))
    query = query.order_by(free.desc(), Device.id).limit(1).with_for_update(of=Device)
    for _ in range(_PLACEMENT_ATTEMPTS):
        device = await session.scalar(query)
        if device is None:
            break
        if await hosted_count(session, device.id) < device.capacity:
            return device
    raise ProblemError(
        503,
        "No Capacity",
        f"No enabled device of provider {provider!r} has room for another load balancer.",
        headers={"Retry-After": "30"},
    )


async def lock_pinned_device(
    session: AsyncSession, device_id: UUID, provider: str | None
) -> Device:
    device = await session.scalar(select(Device).where(Device.id == device_id).with_for_update())
    if device is None:
        raise invalid("device_id", f"device {device_id} does not exist")
    if provider is not None and provider != device.driver:
        raise invalid(
            "provider", f"device {device_id} runs provider {device.driver!r}, not {provider!r}"
        )
    if not device.enabled:
        raise conflict(f"Device {device_id} is disabled.")
    if await hosted_count(session, device.id) >= device.capacity:
        raise conflict(f"Device {device_id} is full ({device.capacity} load balancers).")
    return device


async def allocate_vip(
    session: AsyncSession, device: Device, requested: IpAddress | None
) -> IpAddress:
    """The requested VIP if it is in range and free, else the lowest free host address."""
    network = ip_network(device.vip_cidr)
    taken = set(
        await session.scalars(
            select(LoadBalancer.vip_address).where(LoadBalancer.vip_address.op("<<=")(str(network)))
        )
    )
    if requested is not None:
        if requested not in network:
            raise invalid("vip_address", f"{requested} is outside the device's VIP range {network}")
        if requested in taken:
            raise conflict(f"vip_address {requested} is already in use.")
        return requested
    for address in network.hosts() if network.num_addresses > 2 else network:
        if address not in taken:
            return address
    raise ProblemError(
        503, "No Free VIP", f"Every address of {network} on device {device.id} is in use."
    )
