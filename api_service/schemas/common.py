"""Fields every Load Balancer v2 object has in responses, and id references."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel


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
