"""Load balancer bodies, Octavia v2 field names."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from api_service.schemas.fields import (
    DriverName,
    IpAddress,
    ProjectId,
    RequestBody,
    StrictBool,
    Tags,
    Text255,
)


class LoadBalancerCreate(RequestBody):
    name: Text255 = ""
    description: Text255 = ""
    admin_state_up: StrictBool = True
    vip_address: IpAddress | None = None
    provider: DriverName | None = None
    project_id: ProjectId | None = None
    tags: Tags = Field(default_factory=list)
    device_id: UUID | None = Field(
        default=None, description="Admin only: place the load balancer on this device."
    )


class LoadBalancerUpdate(RequestBody):
    name: Text255 | None = None
    description: Text255 | None = None
    admin_state_up: StrictBool | None = None
    tags: Tags | None = None


class LoadBalancerCreateBody(RequestBody):
    loadbalancer: LoadBalancerCreate


class LoadBalancerUpdateBody(RequestBody):
    loadbalancer: LoadBalancerUpdate


class IdRef(BaseModel):
    id: UUID


class LoadBalancerOut(BaseModel):
    id: UUID
    project_id: str
    tenant_id: str
    name: str
    description: str
    admin_state_up: bool
    provisioning_status: str
    operating_status: str
    status_reason: str | None
    provider: str
    vip_address: str
    vip_port_id: str | None = None
    vip_subnet_id: str | None = None
    vip_network_id: str | None = None
    vip_qos_policy_id: str | None = None
    flavor_id: str | None = None
    availability_zone: str | None = None
    listeners: list[IdRef] = Field(default_factory=list)
    pools: list[IdRef] = Field(default_factory=list)
    tags: list[str]
    device_id: UUID | None = Field(default=None, description="Shown to admins only.")
    generation: int
    created_at: datetime
    updated_at: datetime


class LoadBalancerBody(BaseModel):
    loadbalancer: LoadBalancerOut


class LoadBalancerList(BaseModel):
    loadbalancers: list[LoadBalancerOut]
    loadbalancers_links: list[dict[str, str]] = Field(default_factory=list)
