"""Neutron-shaped bodies of VIP networks, subnets and ports (``/v2.0/networks`` …): what
OpenStack clients read to resolve ``--vip-subnet-id`` and friends, and what admins send to
define them."""

from typing import Annotated, Literal
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, Strict

from api_service.schemas.common import LISTED, PageLink
from api_service.schemas.fields import (
    CIDR,
    IpAddress,
    IpAddressOut,
    OnlyFalse,
    OnlyTrue,
    ProjectId,
    RequestBody,
    Text255,
    Timestamp,
    network,
)

Cidr = Annotated[str, Strict(), CIDR, AfterValidator(network)]


class AllocationPool(RequestBody):
    """A range of addresses VIPs are given from, both ends included."""

    start: IpAddress
    end: IpAddress


class AllocationPoolOut(BaseModel):
    start: IpAddressOut
    end: IpAddressOut


class NetworkCreate(RequestBody):
    name: Text255 = ""
    description: Text255 = ""
    project_id: ProjectId | None = Field(
        default=None, description="The owner shown; every project may read the network."
    )
    admin_state_up: OnlyTrue = True
    shared: OnlyTrue = Field(default=True, description="VIP networks are always shared.")


class NetworkCreateBody(RequestBody):
    network: NetworkCreate


class NeutronObjectOut(BaseModel):
    id: UUID
    name: str
    description: str
    project_id: str
    tenant_id: str
    tags: list[str] = Field(default_factory=list)
    created_at: Timestamp
    updated_at: Timestamp


class NetworkOut(NeutronObjectOut):
    status: Literal["ACTIVE"] = "ACTIVE"
    admin_state_up: bool = True
    shared: bool = True
    subnets: list[UUID]


class NetworkBody(BaseModel):
    network: NetworkOut


class NetworkListItem(NetworkOut):
    model_config = LISTED


class NetworkList(BaseModel):
    networks: list[NetworkListItem]
    networks_links: list[PageLink] = Field(default_factory=list)


class SubnetCreate(RequestBody):
    """Without ``allocation_pools`` VIPs come from every host address of ``cidr`` but the
    gateway's."""

    network_id: UUID
    cidr: Cidr
    name: Text255 = ""
    description: Text255 = ""
    ip_version: Literal[4, 6] | None = Field(default=None, description="Must match cidr.")
    gateway_ip: IpAddress | None = None
    allocation_pools: Annotated[list[AllocationPool], Field(max_length=100)] | None = None
    project_id: ProjectId | None = None
    enable_dhcp: OnlyFalse = False


class SubnetCreateBody(RequestBody):
    subnet: SubnetCreate


class SubnetOut(NeutronObjectOut):
    network_id: UUID
    cidr: str = Field(json_schema_extra={"format": "cidr"})
    ip_version: Literal[4, 6]
    gateway_ip: IpAddressOut | None
    allocation_pools: list[AllocationPoolOut]
    enable_dhcp: bool = False
    dns_nameservers: list[str] = Field(default_factory=list)
    host_routes: list[str] = Field(default_factory=list)
    ipv6_ra_mode: None = None
    ipv6_address_mode: None = None
    subnetpool_id: None = None


class SubnetBody(BaseModel):
    subnet: SubnetOut


class SubnetListItem(SubnetOut):
    model_config = LISTED


class SubnetList(BaseModel):
    subnets: list[SubnetListItem]
    subnets_links: list[PageLink] = Field(default_factory=list)


class FixedIp(RequestBody):
    subnet_id: UUID
    ip_address: IpAddress | None = Field(
        default=None, description="Without it, the next free address of the subnet's pools."
    )


class FixedIpOut(BaseModel):
    subnet_id: UUID
    ip_address: IpAddressOut


class PortCreate(RequestBody):
    """An address reserved for a project, which may then create a load balancer on it
    (``vip_port_id``)."""

    network_id: UUID
    fixed_ips: Annotated[list[FixedIp], Field(min_length=1, max_length=1)] | None = Field(
        default=None,
        description="One subnet of the network (and address); without it, its first subnet.",
    )
    name: Text255 = ""
    project_id: ProjectId | None = Field(default=None, description="Whose port it is.")
    admin_state_up: OnlyTrue = True


class PortCreateBody(RequestBody):
    port: PortCreate


class PortOut(NeutronObjectOut):
    network_id: UUID
    fixed_ips: list[FixedIpOut]
    device_owner: str
    device_id: UUID | None = Field(description="The load balancer using the port, if any.")
    status: Literal["ACTIVE", "DOWN"]
    admin_state_up: bool = True
    security_groups: list[str] = Field(default_factory=list)


class PortBody(BaseModel):
    port: PortOut


class PortListItem(PortOut):
    model_config = LISTED


class PortList(BaseModel):
    ports: list[PortListItem]
    ports_links: list[PageLink] = Field(default_factory=list)


class ExtensionList(BaseModel):
    """Neutron's API extensions: none (clients look some up before a port create)."""

    extensions: list[dict[str, str]] = Field(default_factory=list, max_length=0)
