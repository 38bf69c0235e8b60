"""Load balancer bodies, Octavia v2 field names; a create may carry the whole tree."""

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api_service.schemas.common import LISTED, IdRef, ObjectOut, PageLink
from api_service.schemas.fields import (
    DriverName,
    IpAddress,
    IpAddressOut,
    ProjectId,
    RequestBody,
    StrictBool,
    Tags,
    Text255,
)
from api_service.schemas.flavors import ZoneName
from api_service.schemas.healthmonitors import HealthMonitorCreate, MonitorType
from api_service.schemas.l7policies import L7Action, L7PolicyCreate
from api_service.schemas.l7rules import RuleType
from api_service.schemas.listeners import ListenerCreate, headers_for_http_only
from api_service.schemas.members import MemberCreate
from api_service.schemas.pools import PoolCreate
from shared.status import OperatingStatus, ProvisioningStatus

NeutronId = Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")]


class HealthMonitorInTree(HealthMonitorCreate):
    model_config = ConfigDict(json_schema_extra=None)

    pool_id: None = None


class PoolInTree(PoolCreate):
    model_config = ConfigDict(json_schema_extra=None)

    listener_id: None = None
    loadbalancer_id: None = None
    members: Annotated[list[MemberCreate], Field(max_length=1000)] = Field(default_factory=list)
    healthmonitor: HealthMonitorInTree | None = None


class L7PolicyInTree(L7PolicyCreate):
    """A policy of a listener created in the same call: a REDIRECT_TO_POOL one names its pool
    by ``redirect_pool`` (created with it)."""

    model_config = ConfigDict(json_schema_extra=None)

    listener_id: None = None
    redirect_pool_id: None = None
    redirect_pool: PoolInTree | None = None


class ListenerInTree(ListenerCreate):
    model_config = ConfigDict(json_schema_extra=headers_for_http_only)

    loadbalancer_id: None = None
    default_pool_id: None = None
    default_pool: PoolInTree | None = None
    l7policies: Annotated[list[L7PolicyInTree], Field(max_length=100)] = Field(default_factory=list)


class LoadBalancerCreate(RequestBody):
    name: Text255 = ""
    description: Text255 = ""
    admin_state_up: StrictBool = True
    vip_address: IpAddress | None = None
    vip_subnet_id: NeutronId | None = None
    vip_network_id: NeutronId | None = None
    vip_port_id: NeutronId | None = Field(
        default=None, description="An unused port of the project (/v2.0/ports): its address."
    )
    vip_qos_policy_id: None = None
    flavor_id: UUID | None = Field(
        default=None, description="A flavor (GET /flavors): its provider and device group."
    )
    availability_zone: ZoneName | None = Field(
        default=None, description="An availability zone (GET /availabilityzones) by name."
    )
    provider: DriverName | None = None
    project_id: ProjectId | None = None
    tags: Tags = Field(default_factory=list)
    device_id: UUID | None = Field(
        default=None, description="Admin only: place the load balancer on this device."
    )
    listeners: Annotated[list[ListenerInTree], Field(max_length=100)] = Field(default_factory=list)
    pools: Annotated[list[PoolInTree], Field(max_length=100)] = Field(default_factory=list)


class LoadBalancerUpdate(RequestBody):
    name: Text255 | None = None
    description: Text255 | None = None
    admin_state_up: StrictBool | None = None
    tags: Tags | None = None
    vip_qos_policy_id: None = None


class LoadBalancerCreateBody(RequestBody):
    loadbalancer: LoadBalancerCreate


class LoadBalancerUpdateBody(RequestBody):
    loadbalancer: LoadBalancerUpdate


class LoadBalancerOut(ObjectOut):
    provider: str
    vip_address: IpAddressOut
    vip_port_id: str | None = None
    vip_subnet_id: str | None = None
    vip_network_id: str | None = None
    vip_qos_policy_id: str | None = None
    flavor_id: str | None = None
    availability_zone: str | None = None
    listeners: list[IdRef] = Field(default_factory=list)
    pools: list[IdRef] = Field(default_factory=list)
    device_id: UUID | None = Field(default=None, description="Shown to admins only.")
    generation: int


class LoadBalancerBody(BaseModel):
    loadbalancer: LoadBalancerOut


class LoadBalancerListItem(LoadBalancerOut):
    """A load balancer in a list: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class LoadBalancerList(BaseModel):
    loadbalancers: list[LoadBalancerListItem]
    loadbalancers_links: list[PageLink] = Field(default_factory=list)


class StatsOut(BaseModel):
    active_connections: int
    bytes_in: int
    bytes_out: int
    request_errors: int
    total_connections: int


class StatsBody(BaseModel):
    stats: StatsOut


class ObjectStatus(BaseModel):
    id: UUID
    name: str
    provisioning_status: ProvisioningStatus
    operating_status: OperatingStatus


class MonitorStatus(ObjectStatus):
    type: MonitorType


class MemberStatus(ObjectStatus):
    address: IpAddressOut
    protocol_port: int


class PoolStatus(ObjectStatus):
    members: list[MemberStatus]
    health_monitor: MonitorStatus | None = Field(
        default=None, description="Left out when the pool has none."
    )


class RuleStatus(BaseModel):
    id: UUID
    provisioning_status: ProvisioningStatus
    operating_status: OperatingStatus
    type: RuleType


class L7PolicyStatus(ObjectStatus):
    action: L7Action
    rules: list[RuleStatus]


class ListenerStatus(ObjectStatus):
    pools: list[PoolStatus] = Field(
        description="The default pool, if any, then the pools its L7 policies redirect to."
    )
    l7policies: list[L7PolicyStatus] = Field(default_factory=list, description="By position.")


class LoadBalancerStatus(ObjectStatus):
    listeners: list[ListenerStatus]


class Statuses(BaseModel):
    loadbalancer: LoadBalancerStatus


class StatusTreeBody(BaseModel):
    """Octavia's status tree: listeners, their default pools, members and health monitor."""

    statuses: Statuses
