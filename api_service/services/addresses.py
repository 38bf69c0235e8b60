"""Which addresses a member (and its health monitor) may have.

A load balancer would otherwise reach, for its project, what the project cannot:
the device's own services on loopback, a cloud's metadata service on
link-local, other load balancers' VIPs. Refused: unspecified, multicast,
broadcast, link-local and IPv4-mapped IPv6 addresses, loopback (unless
``LBAAS_ALLOW_LOOPBACK_MEMBERS``, for a local stack), the networks of
``LBAAS_RESERVED_MEMBER_NETWORKS``, and every device's VIP range (its ``vip_cidr`` and the
subnets it serves).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.models import Member
from api_service.errors import Invalid
from api_service.services.tree import Tree

IpAddress = IPv4Address | IPv6Address
_BROADCAST = IPv4Address("255.255.255.255")


@dataclass(frozen=True)
class MemberAddresses:
    reserved: tuple[IPv4Network | IPv6Network, ...] = ()
    allow_loopback: bool = False

    def refusal(self, address: IpAddress) -> str | None:
        """Why ``address`` may not be a member's, or None."""
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            return "an IPv4-mapped IPv6 address (give the IPv4 address itself)"
        if address.is_unspecified:
            return "unspecified"
        if address.is_multicast:
            return "a multicast address"
        if address == _BROADCAST:
            return "the broadcast address"
        if address.is_link_local:
            return "link-local (where metadata services live)"
        if address.is_loopback and not self.allow_loopback:
            return "a loopback address"
        if any(address.version == net.version and address in net for net in self.reserved):
            return "in a reserved network"
        return None

    async def check(self, session: AsyncSession, tree: Tree) -> None:
        """Refuse the members the change at the tree's generation creates or updates."""
        changed = [
            member
            for member in tree.members
            if member.changed_generation == tree.lb.generation and not member.deleting
        ]
        for field, address in _addresses(changed):
            why = self.refusal(address)
            if why is not None:
                raise Invalid(field, f"{address} cannot be a member's address: it is {why}.")
        checked = _addresses(changed)
        if not checked:
            return
        in_vip_range = await session.scalar(
            _IN_VIP_RANGE, {"addresses": [str(a) for _, a in checked]}
        )
        if in_vip_range is not None:
            field = next(f for f, a in checked if a == ip_address(str(in_vip_range)))
            raise Invalid(
                field, "a member's address cannot be one load balancer VIPs are given from."
            )


_IN_VIP_RANGE = text(
    "SELECT a FROM unnest(CAST(:addresses AS inet[])) AS a"
    " WHERE EXISTS (SELECT 1 FROM devices d WHERE d.vip_cidr >>= a)"
    " OR EXISTS (SELECT 1 FROM device_subnets ds JOIN vip_subnets s ON s.id = ds.subnet_id"
    " WHERE s.cidr >>= a) LIMIT 1"
)


def _addresses(members: Iterable[Member]) -> list[tuple[str, IpAddress]]:
    found = []
    for member in members:
        found.append(("address", ip_address(str(member.address))))
        if member.monitor_address is not None:
            found.append(("monitor_address", ip_address(str(member.monitor_address))))
    return found
