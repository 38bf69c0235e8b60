"""Operation bodies (extension): the record of each asynchronous change."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from api_service.schemas.common import PageLink
from shared.status import OperationStatus


class OperationOut(BaseModel):
    id: UUID
    project_id: str
    loadbalancer_id: UUID
    device_id: UUID
    action: str
    target_type: str
    target_id: UUID
    generation: int
    status: OperationStatus
    error: str | None
    agent_id: str | None
    requested_by: str | None
    requested_by_token_id: UUID | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    completed_at: datetime | None


class OperationBody(BaseModel):
    operation: OperationOut


class OperationList(BaseModel):
    operations: list[OperationOut]
    operations_links: list[PageLink] = Field(default_factory=list)
