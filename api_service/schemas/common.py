"""Fields every Load Balancer v2 object has in responses, id references and page links."""

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from api_service.schemas.fields import Timestamp
from shared.status import OperatingStatus, ProvisioningStatus


class IdRef(BaseModel):
    id: UUID


class ObjectOut(BaseModel):
    id: UUID
    project_id: str
    tenant_id: str
    name: str
    description: str
    admin_state_up: bool
    provisioning_status: ProvisioningStatus
    operating_status: OperatingStatus
    status_reason: str | None
    tags: list[str]
    created_at: Timestamp
    updated_at: Timestamp


class PageLink(BaseModel):
    """A link of a list's ``<collection>_links``: the page before or after this one."""

    href: str = Field(
        description="The same list, from the page before or after this one on.",
        json_schema_extra={"format": "uri"},
    )
    rel: Literal["next", "previous"]


def _fields_may_be_left_out(schema: dict[str, Any]) -> None:
    schema.pop("required", None)


LISTED = ConfigDict(json_schema_extra=_fields_may_be_left_out)
"""The config of an object as a list shows it: ``fields=`` may leave any field out."""
