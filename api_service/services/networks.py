"""VIP networks, subnets and ports: Neutron's objects as far as load balancers need them.

Admins define networks and subnets (a subnet's ``allocation_pools`` are where VIPs come
from) and say which devices serve a subnet (a device's ``vip_subnet_ids``; a device always
serves the subnet of its ``vip_cidr``, made if missing). Networks and subnets are shared:
every caller reads them, as Neutron's shared networks. A port is an address taken on a
subnet: each load balancer's VIP has one (it goes with the load balancer), and an admin may
reserve one for a project, which may then create a load balancer on it (``vip_port_id``).
Projects see their own ports only.
"""

from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from typing import TypeVar
from uuid import UUID, uuid4

from sqlalchemy import ColumnElement, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.listing import (
    Filters,
    ListQuery,
    Page,
    fetch_page,
    parse_address,
    parse_int,
    parse_network,
)
from api_service.db.models import (
    Device,
    DeviceSubnet,
    LoadBalancer,
    Member,
    VipNetwork,
    VipPort,
    VipSubnet,
)
from api_service.errors import Conflict, Invalid, NoCapacity, NotFound
from api_service.schemas.networks import AllocationPool, NetworkCreate, PortCreate, SubnetCreate
from api_service.services.scheduling import (
    IpAddress,
    allocate_address,
    host_range,
)
from api_service.services.tree import Tree

NETWORK_FILTERS: Filters = {"id": UUID, "name": str, "description": str, "project_id": str}
SUBNET_FILTERS: Filters = {
    **NETWORK_FILTERS,
    "network_id": UUID,
    "cidr": parse_network,
    "ip_version": parse_int,
    "gateway_ip": parse_address,
}
PORT_FILTERS: Filters = {
    "id": UUID,
    "name": str,
    "project_id": str,
    "network_id": UUID,
    "subnet_id": UUID,
    "ip_address": parse_address,
    "device_owner": str,
    "loadbalancer_id": UUID,
}
NEUTRON_SORTS = frozenset({"name"})
_ALIASES = {"tenant_id": "project_id", "device_id": "loadbalancer_id"}
"""Neutron's other names of filters: ``tenant_id`` for the project, a port's ``device_id``
for what uses it (a load balancer here)."""
VIP_PORT_OWNER = "Octavia"
N = TypeVar("N", VipNetwork, VipSubnet, VipPort)
ADMIN_PROJECT = "admin"
"""Who owns the networks and subnets made for devices' VIP ranges."""


@dataclass(frozen=True)
class NetworkService:
    """VIP networks, subnets and ports: admins define them, every caller reads networks and
    subnets, each project its own ports."""

    sessions: SessionFactory

    async def networks(self, query: ListQuery) -> tuple[Page[VipNetwork], list[list[UUID]]]:
        """A page of networks, with the ids of each one's subnets."""
        async with self.sessions() as session:
            page = await _page(session, VipNetwork, query, None, NETWORK_FILTERS)
            return page, await _subnet_ids(session, [n.id for n in page.items])

    async def network(self, network_id: UUID) -> tuple[VipNetwork, list[UUID]]:
        async with self.sessions() as session:
            network = await _network(session, network_id)
            (subnets,) = await _subnet_ids(session, [network_id])
            return network, subnets

    async def create_network(self, ctx: RequestContext, body: NetworkCreate) -> VipNetwork:
        network = VipNetwork(
            id=uuid4(),
            name=body.name,
            description=body.description,
            project_id=body.project_id or ctx.project_id,
        )
        async with self.sessions.begin() as session:
            session.add(network)
        return network

    async def delete_network(self, network_id: UUID) -> None:
        in_use = Conflict(f"Network {network_id} still has subnets; delete them first.")
        try:
            async with self.sessions.begin() as session:
                network = await _network(session, network_id)
                if await _exists(session, VipSubnet.network_id == network_id):
                    raise in_use
                await session.delete(network)
        except IntegrityError:
            raise in_use from None  # a subnet made on it meanwhile

    async def subnets(self, query: ListQuery) -> Page[VipSubnet]:
        async with self.sessions() as session:
            return await _page(session, VipSubnet, query, None, SUBNET_FILTERS)

    async def subnet(self, subnet_id: UUID) -> VipSubnet:
        async with self.sessions() as session:
            return await _subnet(session, subnet_id)

    async def create_subnet(self, ctx: RequestContext, body: SubnetCreate) -> VipSubnet:
        cidr = ip_network(body.cidr)
        if body.ip_version is not None and body.ip_version != cidr.version:
            raise Invalid("ip_version", f"is {body.ip_version}, but {cidr} is IPv{cidr.version}")
        gateway = _gateway(cidr, body.gateway_ip)
        pools = _pools(cidr, gateway, body.allocation_pools)
        async with self.sessions.begin() as session:
            await _network(session, body.network_id, field="network_id")
            subnet = VipSubnet(
                id=uuid4(),
                network_id=body.network_id,
                name=body.name,
                description=body.description,
                project_id=body.project_id or ctx.project_id,
                cidr=body.cidr,
                gateway_ip=None if gateway is None else str(gateway),
                allocation_pools=pools,
            )
            session.add(subnet)
        async with self.sessions() as session:
            return await _subnet(session, subnet.id)

    async def delete_subnet(self, subnet_id: UUID) -> None:
        ported = Conflict(f"Subnet {subnet_id} still has ports; delete them first.")
        try:
            async with self.sessions.begin() as session:
                subnet = await _subnet(session, subnet_id)
                if await _exists(session, VipPort.subnet_id == subnet_id):
                    raise ported
                if await _exists(session, DeviceSubnet.subnet_id == subnet_id):
                    raise Conflict(
                        f"Subnet {subnet_id} is served by devices; take it out of their "
                        "vip_subnet_ids (or change their vip_cidr) first."
                    )
                await session.delete(subnet)
        except IntegrityError:
            raise ported from None  # a port taken on it meanwhile

    async def ports(self, ctx: RequestContext, query: ListQuery) -> Page[VipPort]:
        """A page of the ports the caller may see: its project's, or every one."""
        scope = None if ctx.reads_all else VipPort.project_id == ctx.project_id
        async with self.sessions() as session:
            return await _page(session, VipPort, query, scope, PORT_FILTERS)

    async def port(self, ctx: RequestContext, port_id: UUID) -> VipPort:
        async with self.sessions() as session:
            return await _visible_port(session, ctx, port_id)

    async def create_port(self, ctx: RequestContext, body: PortCreate) -> VipPort:
        fixed = body.fixed_ips[0] if body.fixed_ips else None
        requested = ip_address(fixed.ip_address) if fixed and fixed.ip_address else None
        try:
            async with self.sessions.begin() as session:
                await _network(session, body.network_id, field="network_id")
                subnet = await _subnet_of_network(
                    session, body.network_id, fixed.subnet_id if fixed else None
                )
                port = VipPort(
                    id=uuid4(),
                    name=body.name,
                    project_id=body.project_id or ctx.project_id,
                    network_id=subnet.network_id,
                    subnet_id=subnet.id,
                    ip_address=await allocate_address(session, subnet, requested),
                    device_owner="",
                    loadbalancer_id=None,
                )
                session.add(port)
        except NoCapacity as exc:
            # Neutron's IpAddressGenerationFailure: the caller asked this subnet for an
            # address, and it has none to give until one of its ports goes.
            raise Conflict(str(exc)) from None
        except IntegrityError:
            taken = requested or "the address it was given"
            raise Conflict(f"ip_address {taken} is already in use.") from None
        return port

    async def delete_port(self, port_id: UUID) -> None:
        async with self.sessions.begin() as session:
            port = await session.get(VipPort, port_id, with_for_update=True)
            if port is None:
                raise NotFound("Port", port_id)
            if port.loadbalancer_id is not None:
                raise Conflict(
                    f"Port {port_id} is the VIP of load balancer {port.loadbalancer_id}; "
                    "it goes with it."
                )
            await session.delete(port)


@dataclass(frozen=True)
class VipRequest:
    """Where a new load balancer's VIP may go, from its ``vip_*`` fields."""

    subnets: list[UUID] | None
    """The subnets it may be on (in order of preference); None: any a chosen device serves."""
    port: VipPort | None = None
    """The unused port it takes (locked), when ``vip_port_id`` named one."""
    address: IpAddress | None = None


async def vip_request(
    session: AsyncSession,
    ctx: RequestContext,
    project_id: str,
    *,
    port_id: str | None,
    subnet_id: str | None,
    network_id: str | None,
    address: IpAddress | None,
) -> VipRequest:
    """Resolve ``vip_port_id``, ``vip_subnet_id``, ``vip_network_id`` (and an admin's
    ``vip_address``) into the subnets the VIP may be on; each named object must exist and
    agree with the others."""
    if port_id is not None:
        port = await _free_port(session, ctx, project_id, port_id)
        _agrees("vip_subnet_id", subnet_id, port.subnet_id, f"port {port.id}")
        _agrees("vip_network_id", network_id, port.network_id, f"port {port.id}")
        if address is not None and address != ip_address(str(port.ip_address)):
            raise Invalid("vip_address", f"port {port.id} has the address {port.ip_address}")
        return VipRequest([port.subnet_id], port, ip_address(str(port.ip_address)))
    if subnet_id is not None:
        subnet = await _subnet(session, _uuid("vip_subnet_id", subnet_id), field="vip_subnet_id")
        _agrees("vip_network_id", network_id, subnet.network_id, f"subnet {subnet.id}")
        if address is not None and address not in ip_network(subnet.cidr):
            raise Invalid("vip_address", f"{address} is outside subnet {subnet.id} ({subnet.cidr})")
        return VipRequest([subnet.id], address=address)
    scope: list[ColumnElement[bool]] = []
    if network_id is not None:
        network = await _network(
            session, _uuid("vip_network_id", network_id), field="vip_network_id"
        )
        scope.append(VipSubnet.network_id == network.id)
    if address is not None:
        scope.append(VipSubnet.cidr.op(">>=")(str(address)))
    if not scope:
        return VipRequest(None)
    found = list(
        await session.scalars(
            select(VipSubnet.id).where(*scope).order_by(VipSubnet.created_at, VipSubnet.id)
        )
    )
    if not found:
        where = f"network {network_id}" if network_id is not None else "any subnet"
        field = "vip_address" if address is not None else "vip_network_id"
        raise Invalid(field, f"no VIP can be given there: {where} has no subnet holding it")
    return VipRequest(found, address=address)


async def place_vip(
    session: AsyncSession, device: Device, served: list[VipSubnet], wanted: VipRequest
) -> tuple[VipSubnet, IpAddress]:
    """The subnet and address of a new load balancer's VIP on ``device``: the requested
    port's, or the requested (or the next free) address of the first subnet of ``served``
    (those of the VIP's subnets the device serves) that has one."""
    if not served:
        field = "vip_address" if wanted.address is not None else "vip_subnet_id"
        raise Invalid(field, f"device {device.id} serves no subnet the VIP may be on")
    if wanted.port is not None:
        return served[0], ip_address(str(wanted.port.ip_address))
    for subnet in served[:-1]:
        with suppress(NoCapacity):
            return subnet, await allocate_address(session, subnet, wanted.address)
    return served[-1], await allocate_address(session, served[-1], wanted.address)


def take_port(
    port: VipPort | None, lb: LoadBalancer, subnet: VipSubnet, address: IpAddress
) -> VipPort:
    """The port of a new load balancer's VIP: the one it was given, or one made for it; it
    goes with the load balancer."""
    if port is None:
        port = VipPort(
            id=uuid4(),
            name=f"octavia-lb-{lb.id}",
            project_id=lb.project_id,
            network_id=subnet.network_id,
            subnet_id=subnet.id,
            ip_address=str(address),
        )
    port.device_owner = VIP_PORT_OWNER
    port.loadbalancer_id = lb.id
    return port


async def vip_subnets(session: AsyncSession, lb_id: UUID) -> list[UUID] | None:
    """The subnet of a load balancer's VIP port (None if it has none): where it may move."""
    subnet_id = await session.scalar(
        select(VipPort.subnet_id).where(VipPort.loadbalancer_id == lb_id)
    )
    return None if subnet_id is None else [subnet_id]


async def subnet_for_cidr(session: AsyncSession, cidr: str) -> VipSubnet:
    """The subnet of exactly ``cidr`` (the oldest one), or a new one on a network of its own
    whose pool is every host address: what a device registered with a ``vip_cidr`` serves."""
    found = await session.scalar(
        select(VipSubnet).where(VipSubnet.cidr == cidr).order_by(VipSubnet.created_at).limit(1)
    )
    if found is not None:
        return found
    network = ip_network(cidr)
    name = f"vip-{network}"
    made = VipNetwork(id=uuid4(), name=name, project_id=ADMIN_PROJECT)
    session.add(made)
    first, last = host_range(network)
    subnet = VipSubnet(
        id=uuid4(),
        network_id=made.id,
        name=name,
        project_id=ADMIN_PROJECT,
        cidr=str(network),
        allocation_pools=[{"start": str(first), "end": str(last)}],
    )
    session.add(subnet)
    await session.flush()
    return subnet


async def serve(
    session: AsyncSession, device_id: UUID, cidr: str, subnet_ids: Sequence[UUID]
) -> None:
    """The device serves exactly the subnet of ``cidr`` (made if missing) and ``subnet_ids``,
    each of which must exist; it cannot stop serving one its load balancers have VIPs on."""
    primary = await subnet_for_cidr(session, cidr)
    wanted = {primary.id, *subnet_ids}
    found = set(await session.scalars(select(VipSubnet.id).where(VipSubnet.id.in_(wanted))))
    missing = sorted(wanted - found)
    if missing:
        raise NotFound("Subnet", missing[0], field="vip_subnet_ids")
    links = {link.subnet_id: link for link in await _links(session, device_id)}
    dropped = set(links) - wanted
    held = dropped & await _in_use(session, device_id)
    if held:
        listed = ", ".join(str(subnet_id) for subnet_id in sorted(held))
        raise Conflict(f"Device {device_id} has load balancers with VIPs on subnet(s) {listed}.")
    for subnet_id in dropped:
        await session.delete(links[subnet_id])
    session.add_all(
        DeviceSubnet(device_id=device_id, subnet_id=subnet_id) for subnet_id in wanted - set(links)
    )
    await session.flush()


async def move_range(session: AsyncSession, device_id: UUID, old_cidr: str, new_cidr: str) -> None:
    """After a ``vip_cidr`` change: the device serves the subnet of the new one, and no longer
    those of the old one but for those its load balancers still have VIPs on."""
    old = set(await session.scalars(select(VipSubnet.id).where(VipSubnet.cidr == old_cidr)))
    released = old - await _in_use(session, device_id)
    kept = [
        link.subnet_id
        for link in await _links(session, device_id)
        if link.subnet_id not in released
    ]
    await serve(session, device_id, new_cidr, kept)


async def served_subnet_ids(
    session: AsyncSession, device_ids: Sequence[UUID]
) -> dict[UUID, list[UUID]]:
    """The subnets each device serves, oldest first."""
    rows = await session.execute(
        select(DeviceSubnet.device_id, DeviceSubnet.subnet_id)
        .join(VipSubnet, VipSubnet.id == DeviceSubnet.subnet_id)
        .where(DeviceSubnet.device_id.in_(device_ids))
        .order_by(VipSubnet.created_at, VipSubnet.id)
    )
    served: dict[UUID, list[UUID]] = {device_id: [] for device_id in device_ids}
    for device_id, subnet_id in rows:
        served[device_id].append(subnet_id)
    return served


async def _links(session: AsyncSession, device_id: UUID) -> list[DeviceSubnet]:
    return list(
        await session.scalars(select(DeviceSubnet).where(DeviceSubnet.device_id == device_id))
    )


async def _in_use(session: AsyncSession, device_id: UUID) -> set[UUID]:
    """The subnets the device's load balancers have their VIPs on."""
    return set(
        await session.scalars(
            select(VipPort.subnet_id)
            .join(LoadBalancer, LoadBalancer.id == VipPort.loadbalancer_id)
            .where(LoadBalancer.device_id == device_id)
            .distinct()
        )
    )


async def check_member_subnets(session: AsyncSession, tree: Tree) -> None:
    """The members a change creates or updates name, with ``subnet_id``, a subnet that exists,
    and have their address in it."""
    changed = [
        member
        for member in tree.members
        if member.changed_generation == tree.lb.generation
        and not member.deleting
        and member.subnet_id is not None
    ]
    for member in changed:
        await _check_member_subnet(session, member)


async def _check_member_subnet(session: AsyncSession, member: Member) -> None:
    assert member.subnet_id is not None
    subnet_id = _uuid("subnet_id", member.subnet_id)
    subnet = await session.get(VipSubnet, subnet_id)
    if subnet is None:
        raise NotFound("Subnet", member.subnet_id, field="subnet_id")
    address = ip_address(str(member.address))
    if address not in ip_network(subnet.cidr):
        raise Invalid("address", f"{address} is outside subnet {subnet.id} ({subnet.cidr})")


def _uuid(field: str, raw: str) -> UUID:
    """A Neutron id from a body: a UUID, else no such object."""
    try:
        return UUID(raw)
    except ValueError:
        kind = "Port" if "port" in field else "Network" if "network" in field else "Subnet"
        raise NotFound(kind, raw, field=field) from None


def _agrees(field: str, given: str | None, actual: UUID, holder: str) -> None:
    if given is not None and given != str(actual):
        raise Invalid(field, f"{holder} is on {actual}, not on {given}")


async def _free_port(
    session: AsyncSession, ctx: RequestContext, project_id: str, raw_id: str
) -> VipPort:
    port_id = _uuid("vip_port_id", raw_id)
    port = await session.get(VipPort, port_id, with_for_update=True)
    if port is None or not ctx.owns(port.project_id):
        raise NotFound("Port", port_id, field="vip_port_id")
    if port.project_id != project_id:
        raise Invalid("vip_port_id", f"port {port_id} belongs to another project")
    if port.loadbalancer_id is not None:
        raise Conflict(f"Port {port_id} is already the VIP of a load balancer.")
    return port


async def _page(
    session: AsyncSession,
    model: type[N],
    query: ListQuery,
    scope: ColumnElement[bool] | None,
    filters: Filters,
) -> Page[N]:
    renamed = {_ALIASES.get(name, name): values for name, values in query.filters.items()}
    return await fetch_page(
        session,
        model,
        replace(query, filters=renamed),
        scope=scope,
        filterable=filters,
        sortable=NEUTRON_SORTS,
    )


async def _subnet_ids(session: AsyncSession, network_ids: Sequence[UUID]) -> list[list[UUID]]:
    rows = await session.execute(
        select(VipSubnet.network_id, VipSubnet.id)
        .where(VipSubnet.network_id.in_(network_ids))
        .order_by(VipSubnet.created_at, VipSubnet.id)
    )
    grouped: dict[UUID, list[UUID]] = {network_id: [] for network_id in network_ids}
    for network_id, subnet_id in rows:
        grouped[network_id].append(subnet_id)
    return [grouped[network_id] for network_id in network_ids]


async def _exists(session: AsyncSession, *conditions: ColumnElement[bool]) -> bool:
    return bool(await session.scalar(select(literal(True)).where(*conditions).limit(1)))


async def _network(
    session: AsyncSession, network_id: UUID, *, field: str | None = None
) -> VipNetwork:
    network = await session.get(VipNetwork, network_id)
    if network is None:
        raise NotFound("Network", network_id, field=field)
    return network


async def _subnet(session: AsyncSession, subnet_id: UUID, *, field: str | None = None) -> VipSubnet:
    subnet = await session.get(VipSubnet, subnet_id)
    if subnet is None:
        raise NotFound("Subnet", subnet_id, field=field)
    return subnet


async def _subnet_of_network(
    session: AsyncSession, network_id: UUID, subnet_id: UUID | None
) -> VipSubnet:
    """The named subnet, which must be on the network, or the network's first subnet."""
    query = select(VipSubnet).where(VipSubnet.network_id == network_id)
    if subnet_id is not None:
        query = query.where(VipSubnet.id == subnet_id)
    subnet = await session.scalar(query.order_by(VipSubnet.created_at).limit(1))
    if subnet is None:
        if subnet_id is not None:
            raise NotFound("Subnet", subnet_id, field="fixed_ips")
        raise Conflict(f"Network {network_id} has no subnet to take an address on.")
    return subnet


async def _visible_port(session: AsyncSession, ctx: RequestContext, port_id: UUID) -> VipPort:
    port = await session.get(VipPort, port_id)
    if port is None or not ctx.owns(port.project_id):
        raise NotFound("Port", port_id)
    return port


def _gateway(cidr: IPv4Network | IPv6Network, given: str | None) -> IpAddress | None:
    if given is None:
        return None
    gateway = ip_address(given)
    if gateway not in cidr:
        raise Invalid("gateway_ip", f"{gateway} is outside {cidr}")
    return gateway


def _pools(
    cidr: IPv4Network | IPv6Network,
    gateway: IpAddress | None,
    given: Sequence[AllocationPool] | None,
) -> list[dict[str, str]]:
    """The pools as stored: each within the cidr, in order, none overlapping another or
    holding the gateway; without any, the host range around the gateway."""
    if given is None:
        first, last = (int(a) for a in host_range(cidr))
        ranges = [(first, last)]
        if gateway is not None and first <= int(gateway) <= last:
            ranges = [(first, int(gateway) - 1), (int(gateway) + 1, last)]
        ranges = [(start, end) for start, end in ranges if start <= end]
    else:
        ranges = []
        for pool in given:
            low, high = ip_address(pool.start), ip_address(pool.end)
            if low not in cidr or high not in cidr or int(low) > int(high):
                raise Invalid("allocation_pools", f"{low}-{high} is not a range of {cidr}")
            ranges.append((int(low), int(high)))
        ranges.sort()
    for index, (start, end) in enumerate(ranges):
        if gateway is not None and start <= int(gateway) <= end:
            raise Invalid("allocation_pools", f"{_shown(cidr, start, end)} holds the gateway")
        if index and ranges[index - 1][1] >= start:
            raise Invalid("allocation_pools", f"{_shown(cidr, start, end)} overlaps another")
    return [{"start": str(_at(cidr, start)), "end": str(_at(cidr, end))} for start, end in ranges]


def _at(cidr: IPv4Network | IPv6Network, value: int) -> IpAddress:
    """The address of ``cidr``'s family with the integer ``value``."""
    return cidr.network_address.__class__(value)


def _shown(cidr: IPv4Network | IPv6Network, start: int, end: int) -> str:
    return f"{_at(cidr, start)}-{_at(cidr, end)}"
