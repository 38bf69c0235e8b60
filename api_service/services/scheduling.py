"""Placement: which device hosts a new load balancer (one serving a subnet its VIP may be
on), and which address of the subnet's allocation pools the VIP gets.

A create chooses its device first (a read that takes no row lock, only the advisory lock
of the VIP it claims with it); its load balancer row counts its
place when the transaction commits (a deferred trigger runs the guarded ``UPDATE …
WHERE loadbalancer_count < capacity``, migration 0010). The device row is locked only while
a commit runs in the server, so concurrent creates on one device run side by side, are
counted one after the other and never exceed its capacity (one whose commit finds the
device filled meanwhile chooses again). A failover moves a load balancer with
:func:`pick_device`, which counts its place at once. Concurrent allocations on one subnet
skip each other's addresses: each claims its address with a transaction-scoped advisory
lock taken with *try*, never waited for.
"""

from collections.abc import Sequence
from functools import cache
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any, NoReturn
from uuid import UUID

from sqlalchemy import (
    ARRAY,
    ColumnClause,
    Select,
    Update,
    Uuid,
    any_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    null,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.models import Device, DeviceSubnet, LoadBalancer, VipPort, VipSubnet
from api_service.errors import Conflict, Invalid, NoCapacity, NotFound

IpAddress = IPv4Address | IPv6Address

_PLACEMENT_ATTEMPTS = 5
_CLAIM_SPAN = 63
_CLAIM_SQL = (
    "SELECT candidate FROM"
    " (SELECT CASE WHEN top IS NULL THEN {first}"
    "  WHEN top < {last} THEN top + 1 END AS start"
    "  FROM (SELECT max(ip_address) AS top FROM vip_ports"
    "   WHERE ip_address BETWEEN {first} AND {last}) AS used) AS pool,"
    " LATERAL (SELECT pool.start + step AS candidate"
    "  FROM generate_series(0, CASE WHEN pool.start >= (CASE"
    "   WHEN {last} < netmask(set_masklen({last}, 0)) + {span}"
    "   THEN netmask(set_masklen({last}, 0)) ELSE {last} - {span} END)"
    "   THEN {last} - pool.start ELSE {span} END) AS step) AS tried"
    " WHERE pg_try_advisory_xact_lock(1818386803, hashtext(host(candidate)))"
    " LIMIT 1"
)
"""The address after the highest one in use in the pool ``first``..``last``, or the next of
``span`` after it that no other transaction claims: each is claimed with an advisory lock
(namespace ``b'lbas'``) until the commit, tried in order and never waited for. The series
ends at ``last``, so no address past the pool is ever locked, however the planner orders
the conditions. It is ``last - start`` only when ``start`` is within ``span`` of ``last``
(compared with ``last`` less ``span``, or the family's first address when that is lower), so
no address difference is taken that could overflow (an IPv6 pool can span more than 2**63
addresses) and no subtraction goes below the family's first address."""
_CLAIM = text(
    _CLAIM_SQL.format(first="CAST(:first AS inet)", last="CAST(:last AS inet)", span=":span")
)
_FIRST_POOL = "CAST(vip_subnets.allocation_pools -> 0 ->> '{}' AS inet)"
_CLAIM_ON_FIRST_POOL: ColumnClause[Any] = literal_column(
    "("
    + _CLAIM_SQL.format(
        first=_FIRST_POOL.format("start"), last=_FIRST_POOL.format("end"), span=_CLAIM_SPAN
    )
    + ")"
)
""":data:`_CLAIM` in the first allocation pool of the ``vip_subnets`` row of the query."""


async def choose_device(
    session: AsyncSession,
    provider: str,
    subnets: Sequence[UUID] | None,
    *,
    device_group: str | None = None,
    exclude: UUID | None = None,
) -> Device:
    """The enabled device of ``provider`` with the most free capacity that serves one of
    ``subnets`` (None: any), in ``device_group`` if one is named; not counted yet (a new
    load balancer's row is counted at commit). Says why when there is none."""
    candidates = _candidates(
        excluding=exclude is not None,
        in_group=device_group is not None,
        on_subnets=subnets is not None,
    )
    params = {
        "provider": provider,
        "exclude": exclude,
        "group": device_group,
        "subnets": list(subnets or ()),
    }
    device = await session.scalar(candidates, params)
    if device is None:
        await _refuse_placement(session, provider, subnets, device_group)
    return device


async def choose_placement(
    session: AsyncSession,
    provider: str,
    subnets: Sequence[UUID] | None,
    *,
    device_group: str | None = None,
    claim: bool = False,
) -> tuple[Device, list[VipSubnet], IpAddress | None]:
    """:func:`choose_device` and the subnets it serves (:func:`served_subnets`) in one query;
    when that finds nothing, the two steps again, to say why. With ``claim``, the query also
    claims the address :func:`allocate_address` would try first on the oldest of them: that
    address when that subnet is also the first of the VIP's, else None (the allocation is
    then left to :func:`allocate_address`)."""
    params = {"provider": provider, "group": device_group, "subnets": list(subnets or ())}
    query = _placement(
        in_group=device_group is not None, on_subnets=subnets is not None, claiming=claim
    )
    rows = (await session.execute(query, params)).all()
    if not rows:
        device = await choose_device(session, provider, subnets, device_group=device_group)
        return device, await served_subnets(session, device, subnets), None
    served = _in_order([row[1] for row in rows], subnets)
    claimed = rows[0][2] if claim and rows[0][1] is served[0] else None
    return rows[0][0], served, None if claimed is None else _address(claimed)


async def pick_device(
    session: AsyncSession,
    provider: str,
    subnets: Sequence[UUID] | None,
    *,
    device_group: str | None = None,
    exclude: UUID | None = None,
) -> Device:
    """Choose a device (:func:`choose_device`) and take a place on it at once."""
    for _ in range(_PLACEMENT_ATTEMPTS):
        device = await choose_device(
            session, provider, subnets, device_group=device_group, exclude=exclude
        )
        if await _take_place(session, device.id):
            return device
    await _refuse_placement(session, provider, subnets, device_group)


async def _take_place(session: AsyncSession, device_id: UUID) -> bool:
    """Count a load balancer moved to the device if it is enabled and has room; whether it
    did (the device row stays locked until the commit)."""
    connection = await session.connection()  # a plain UPDATE: nothing of it is in the session
    taken = await connection.scalar(_taking(), {"device_id": device_id})
    return taken is not None


async def _refuse_placement(
    session: AsyncSession, provider: str, subnets: Sequence[UUID] | None, device_group: str | None
) -> NoReturn:
    """Why no device of ``provider`` took a place: it has none, none serves the subnets, or
    all of them are full or disabled."""
    if not await session.scalar(select(literal(True)).where(Device.driver == provider).limit(1)):
        raise Invalid("provider", f"provider {provider!r} is not available")
    if subnets is not None:
        served = select(literal(True)).where(
            Device.driver == provider, Device.id.in_(_serving(subnets))
        )
        if not await session.scalar(served.limit(1)):
            raise Invalid(
                "vip_subnet_id",
                f"no device of provider {provider!r} serves "
                + ", ".join(f"subnet {subnet}" for subnet in subnets),
            )
    group = f" in device group {device_group!r}" if device_group is not None else ""
    raise NoCapacity(
        "No Capacity",
        f"No enabled device of provider {provider!r}{group} has room for another load balancer.",
    )


def _serving(subnets: Sequence[UUID]) -> Select[UUID]:
    return select(DeviceSubnet.device_id).where(DeviceSubnet.subnet_id.in_(subnets))


@cache
def _candidates(*, excluding: bool, in_group: bool, on_subnets: bool) -> Select[Device]:
    """The roomiest device (bound: ``provider``, ``exclude``, ``group``, ``subnets``); built once
    per shape, since every create runs it."""
    candidates = select(Device).where(
        Device.enabled,
        Device.driver == bindparam("provider"),
        Device.loadbalancer_count < Device.capacity,
    )
    if excluding:
        candidates = candidates.where(Device.id != bindparam("exclude"))
    if in_group:
        candidates = candidates.where(Device.device_group == bindparam("group"))
    if on_subnets:
        serving = select(DeviceSubnet.device_id).where(
            DeviceSubnet.subnet_id == any_(bindparam("subnets", type_=ARRAY(Uuid())))
        )
        candidates = candidates.where(Device.id.in_(serving))
    return candidates.order_by(
        (Device.capacity - Device.loadbalancer_count).desc(), Device.id
    ).limit(1)


@cache
def _placement(*, in_group: bool, on_subnets: bool, claiming: bool) -> Select[Any]:
    """The roomiest device (:func:`_candidates`) with each subnet it serves (of ``subnets``
    when ``on_subnets``), the oldest first, and (when ``claiming``) an address claimed in the
    first pool of the first of them (:data:`_CLAIM_ON_FIRST_POOL`; evaluated for that row
    only); built once per shape."""
    chosen = (
        _candidates(excluding=False, in_group=in_group, on_subnets=on_subnets)
        .with_only_columns(Device.id)
        .scalar_subquery()
    )
    order = (VipSubnet.created_at, VipSubnet.id)
    claimed = (
        case((func.row_number().over(order_by=order) == 1, _CLAIM_ON_FIRST_POOL))
        if claiming
        else null()
    )
    query = (
        select(Device, VipSubnet, claimed)
        .join(DeviceSubnet, DeviceSubnet.device_id == Device.id)
        .join(VipSubnet, VipSubnet.id == DeviceSubnet.subnet_id)
        .where(Device.id == chosen)
        .order_by(*order)
    )
    if on_subnets:
        query = query.where(VipSubnet.id == any_(bindparam("subnets", type_=ARRAY(Uuid()))))
    return query


@cache
def _taking() -> Update:
    """Counting a place on the device bound as ``device_id``, if it has one."""
    return (
        update(Device)
        .where(
            Device.id == bindparam("device_id"),
            Device.enabled,
            Device.loadbalancer_count < Device.capacity,
        )
        .values(loadbalancer_count=Device.loadbalancer_count + 1)
        .returning(Device.id)
    )


async def pinned_device(
    session: AsyncSession,
    device_id: UUID,
    provider: str | None,
    *,
    device_group: str | None = None,
) -> Device:
    """The device an admin named, if enabled: of ``provider`` and in ``device_group`` when the
    create names them (itself, or by its flavor or zone); not counted yet (see
    :func:`choose_device`)."""
    device = await session.get(Device, device_id)
    if device is None:
        raise NotFound("Device", device_id)
    if provider is not None and provider != device.driver:
        raise Invalid(
            "provider", f"device {device_id} runs provider {device.driver!r}, not {provider!r}"
        )
    if device_group is not None and device_group != device.device_group:
        raise Invalid(
            "device_id",
            f"device {device_id} is not in device group {device_group!r}, which the flavor "
            "or availability zone names",
        )
    if not device.enabled:
        raise Conflict(f"Device {device_id} is disabled.")
    return device


async def release_place(session: AsyncSession, device_id: UUID) -> None:
    await session.execute(
        update(Device)
        .where(Device.id == device_id)
        .values(loadbalancer_count=Device.loadbalancer_count - 1)
    )


async def served_subnets(
    session: AsyncSession, device: Device, subnets: Sequence[UUID] | None
) -> list[VipSubnet]:
    """The subnets of ``subnets`` (None: any) the device serves, in the order given (else the
    oldest first)."""
    params = {"device_id": device.id, "subnets": list(subnets or ())}
    found = list(await session.scalars(_served(among=subnets is not None), params))
    return _in_order(found, subnets)


def _in_order(found: list[VipSubnet], subnets: Sequence[UUID] | None) -> list[VipSubnet]:
    """``found`` in the order of ``subnets`` (None: as found)."""
    if subnets is not None:
        found.sort(key=lambda subnet: list(subnets).index(subnet.id))
    return found


@cache
def _served(*, among: bool) -> Select[VipSubnet]:
    """The subnets the device bound as ``device_id`` serves (of ``subnets`` when ``among``),
    the oldest first; built once per shape, since every create runs it."""
    query = (
        select(VipSubnet)
        .join(DeviceSubnet, DeviceSubnet.subnet_id == VipSubnet.id)
        .where(DeviceSubnet.device_id == bindparam("device_id"))
        .order_by(VipSubnet.created_at, VipSubnet.id)
    )
    if among:
        query = query.where(VipSubnet.id == any_(bindparam("subnets", type_=ARRAY(Uuid()))))
    return query


async def allocate_address(
    session: AsyncSession,
    subnet: VipSubnet,
    requested: IpAddress | None,
    *,
    field: str = "vip_address",
) -> IpAddress:
    """The requested address if it is on the subnet and free, else a free address of its
    allocation pools (tried in order).

    In a pool, tries the address after the highest one in use (an index look-up), and only
    when the pool is used up to its end searches the gaps, lowest first.
    """
    network = ip_network(subnet.cidr)
    if requested is not None:
        if requested not in network:
            raise Invalid(field, f"{requested} is outside subnet {subnet.id} ({network})")
        if subnet.gateway_ip is not None and requested == _address(subnet.gateway_ip):
            raise Invalid(field, f"{requested} is the gateway of subnet {subnet.id}")
        if await _taken(session, requested):
            raise Conflict(f"{field} {requested} is already in use.")
        return requested
    for pool in subnet.allocation_pools:
        free = await _free_in(session, ip_address(pool["start"]), ip_address(pool["end"]))
        if free is not None:
            return free
    raise NoCapacity(
        "No Free VIP", f"Every address of the pools of subnet {subnet.id} ({network}) is in use."
    )


async def _taken(session: AsyncSession, address: IpAddress) -> bool:
    port = select(literal(True)).where(VipPort.ip_address == str(address))
    vip = select(literal(True)).where(LoadBalancer.vip_address == str(address))
    return bool(await session.scalar(port.union_all(vip).limit(1)))


async def _free_in(session: AsyncSession, first: IpAddress, last: IpAddress) -> IpAddress | None:
    """The first address after the highest one in use that no concurrent allocation holds
    (:data:`_CLAIM` skips those); when the pool is used up to its end, a gap, lowest first."""
    claimed = await session.scalar(
        _CLAIM, {"first": str(first), "last": str(last), "span": _CLAIM_SPAN}
    )
    if claimed is not None:
        return _address(claimed)
    if not await _taken(session, first):
        return first
    gap = await session.scalar(
        text(
            "SELECT a.ip_address + 1 FROM vip_ports a"
            " WHERE a.ip_address >= CAST(:first AS inet)"
            " AND a.ip_address < CAST(:last AS inet)"
            " AND NOT EXISTS"
            " (SELECT 1 FROM vip_ports b WHERE b.ip_address = a.ip_address + 1)"
            " ORDER BY a.ip_address LIMIT 1"
        ),
        {"first": str(first), "last": str(last)},
    )
    return None if gap is None else _address(gap)


def _address(value: object) -> IpAddress:
    """asyncpg returns inet values as addresses, or as interfaces when computed."""
    return ip_address(str(value).split("/")[0])


def host_range(network: IPv4Network | IPv6Network) -> tuple[IpAddress, IpAddress]:
    """First and last assignable address: no network or broadcast address in ranges of >2."""
    if network.num_addresses <= 2:
        return network[0], network[-1]
    return network[1], network[-2]
