"""Fields every Load Balancer v2 object has in responses, and id references."""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class IdRef(BaseModel):
    id: UUID


class ObjectOut(BaseModel):
    id: UUID
    project_id: str
    tenant_id: str
    name: str
    description: str
    admin_state_up: bool
    provisioning_status: str
    operating_status: str
    status_reason: str | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime


def _fields_may_be_left_out(schema: dict[str, Any]) -> None:
    schema.pop("required", None)


LISTED = ConfigDict(json_schema_extra=_fields_may_be_left_out)
"""The config of an object as a list shows it: ``fields=`` may leave any field out."""
