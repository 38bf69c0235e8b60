"""Placement: which device hosts a new load balancer, and which VIP it gets.

A device's ``loadbalancer_count`` is raised in the creating transaction with a
guarded ``UPDATE … WHERE loadbalancer_count < capacity``, which also locks the
device row until commit: concurrent creates on one device are counted one
after the other and never exceed its capacity.
"""

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from uuid import UUID

from sqlalchemy import func, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.models import Device, LoadBalancer
from api_service.errors import Conflict, Invalid, NoCapacity, NotFound

IpAddress = IPv4Address | IPv6Address

_PLACEMENT_ATTEMPTS = 5


async def pick_device(
    session: AsyncSession, provider: str, vip: IpAddress | None, *, exclude: UUID | None = None
) -> Device:
    """Take a place on the enabled device of ``provider`` with the most free capacity."""
    if not await session.scalar(select(literal(True)).where(Device.driver == provider).limit(1)):
        raise Invalid("provider", f"provider {provider!r} is not available")
    candidates = select(Device.id).where(
        Device.enabled, Device.driver == provider, Device.loadbalancer_count < Device.capacity
    )
    if exclude is not None:
        candidates = candidates.where(Device.id != exclude)
    if vip is not None:
        covering = select(literal(True)).where(
            Device.driver == provider, Device.vip_cidr.op(">>=")(str(vip))
        )
        if not await session.scalar(covering.limit(1)):
            raise Invalid(
                "vip_address",
                f"{vip} is outside the VIP range of every device of provider {provider!r}",
            )
        candidates = candidates.where(Device.vip_cidr.op(">>=")(str(vip)))
    candidates = candidates.order_by(
        (Device.capacity - Device.loadbalancer_count).desc(), Device.id
    ).limit(1)
    for _ in range(_PLACEMENT_ATTEMPTS):
        device_id = await session.scalar(candidates)
        if device_id is None:
            break
        device = await _take_place(session, device_id)
        if device is not None:
            return device
    raise NoCapacity(
        "No Capacity",
        f"No enabled device of provider {provider!r} has room for another load balancer.",
    )


async def take_pinned_place(session: AsyncSession, device_id: UUID, provider: str | None) -> Device:
    device = await session.get(Device, device_id)
    if device is None:
        raise NotFound("Device", device_id)
    if provider is not None and provider != device.driver:
        raise Invalid(
            "provider", f"device {device_id} runs provider {device.driver!r}, not {provider!r}"
        )
    if not device.enabled:
        raise Conflict(f"Device {device_id} is disabled.")
    placed = await _take_place(session, device_id)
    if placed is None:
        raise Conflict(f"Device {device_id} is full ({device.capacity} load balancers).")
    return placed


async def release_place(session: AsyncSession, device_id: UUID) -> None:
    await session.execute(
        update(Device)
        .where(Device.id == device_id)
        .values(loadbalancer_count=Device.loadbalancer_count - 1)
    )


async def _take_place(session: AsyncSession, device_id: UUID) -> Device | None:
    taken = await session.scalars(
        update(Device)
        .where(
            Device.id == device_id,
            Device.enabled,
            Device.loadbalancer_count < Device.capacity,
        )
        .values(loadbalancer_count=Device.loadbalancer_count + 1)
        .returning(Device),
        execution_options={"populate_existing": True},
    )
    return taken.one_or_none()


async def allocate_vip(
    session: AsyncSession, device: Device, requested: IpAddress | None
) -> IpAddress:
    """The requested VIP if it is in range and free, else a free host address of the range.

    Tries the address after the highest one in use (an index look-up), and only
    when the range is used up to its end searches the gaps, lowest first.
    """
    network = ip_network(device.vip_cidr)
    in_range = LoadBalancer.vip_address.op("<<=")(str(network))
    if requested is not None:
        if requested not in network:
            raise Invalid("vip_address", f"{requested} is outside the device's VIP range {network}")
        taken = await session.scalar(
            select(literal(True)).where(LoadBalancer.vip_address == str(requested))
        )
        if taken:
            raise Conflict(f"vip_address {requested} is already in use.")
        return requested
    first, last = _host_range(network)
    highest = await session.scalar(select(func.max(LoadBalancer.vip_address)).where(in_range))
    if highest is None:
        return first
    top = _address(highest)
    if int(top) < int(last):
        return top + 1 if int(top) >= int(first) else first
    if not await session.scalar(
        select(literal(True)).where(LoadBalancer.vip_address == str(first))
    ):
        return first
    gap = await session.scalar(
        text(
            "SELECT a.vip_address + 1 FROM loadbalancers a"
            " WHERE a.vip_address <<= CAST(:network AS cidr)"
            " AND a.vip_address < CAST(:last AS inet)"
            " AND NOT EXISTS"
            " (SELECT 1 FROM loadbalancers b WHERE b.vip_address = a.vip_address + 1)"
            " ORDER BY a.vip_address LIMIT 1"
        ),
        {"network": str(network), "last": str(last)},
    )
    if gap is None:
        raise NoCapacity(
            "No Free VIP", f"Every address of {network} on device {device.id} is in use."
        )
    return _address(gap)


def _address(value: object) -> IpAddress:
    """asyncpg returns inet values as addresses, or as interfaces when computed."""
    return ip_address(str(value).split("/")[0])


def _host_range(network: IPv4Network | IPv6Network) -> tuple[IpAddress, IpAddress]:
    """First and last assignable address: no network or broadcast address in ranges of >2."""
    if network.num_addresses <= 2:
        return network[0], network[-1]
    return network[1], network[-2]
