"""Member bodies (Octavia v2 names, defaults and ranges)."""

from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field, Strict

from api_service.schemas.common import LISTED, ObjectOut, PageLink
from api_service.schemas.fields import (
    INTEGRAL,
    IpAddress,
    IpAddressOut,
    Port,
    ProjectId,
    RequestBody,
    StrictBool,
    Tags,
    Text255,
)

Weight = Annotated[int, Strict(), Field(ge=0, le=256), INTEGRAL]


class MemberFields(RequestBody):
    name: Text255 | None = None
    admin_state_up: StrictBool | None = None
    weight: Weight | None = None
    backup: StrictBool | None = None
    monitor_address: IpAddress | None = None
    monitor_port: Port | None = None
    tags: Tags | None = None


class MemberCreate(MemberFields):
    address: IpAddress
    protocol_port: Port
    subnet_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]{1,64}$")] | None = None
    project_id: ProjectId | None = None


class MemberUpdate(MemberFields):
    pass


class MemberCreateBody(RequestBody):
    member: MemberCreate


class MemberUpdateBody(RequestBody):
    member: MemberUpdate


class MembersBatchBody(RequestBody):
    """``PUT /pools/{id}/members``: the whole new member list, matched on address and port."""

    members: Annotated[list[MemberCreate], Field(max_length=1000)]


class MemberOut(ObjectOut):
    pool_id: UUID
    address: IpAddressOut
    protocol_port: int
    weight: int
    backup: bool
    monitor_address: IpAddressOut | None
    monitor_port: int | None
    subnet_id: str | None


class MemberBody(BaseModel):
    member: MemberOut


class MemberListItem(MemberOut):
    """A member in a list: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class MemberList(BaseModel):
    members: list[MemberListItem]
    members_links: list[PageLink] = Field(default_factory=list)
