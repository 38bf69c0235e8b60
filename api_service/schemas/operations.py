"""Operation bodies (extension): the record of each asynchronous change."""

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, Field

from api_service.schemas.common import LISTED, PageLink
from api_service.schemas.fields import Timestamp
from shared.status import OperationStatus


class OperationOut(BaseModel):
    id: UUID
    project_id: str
    loadbalancer_id: UUID
    device_id: UUID | None = Field(
        description="The device that carries the change; null but for admin and "
        "global_observer tokens."
    )
    action: str
    target_type: str
    target_id: UUID
    generation: int
    status: OperationStatus
    error: str | None = Field(description="Why it failed, as the project may read it.")
    error_detail: str | None = Field(
        description="What the device itself said of an infrastructure failure; null but for "
        "admin tokens."
    )
    agent_id: str | None = Field(
        description="The agent that applied it; null but for admin and global_observer tokens."
    )
    requested_by: str | None
    requested_by_token_id: UUID | None
    created_at: Timestamp
    started_at: datetime | None
    finished_at: datetime | None
    completed_at: datetime | None


class OperationBody(BaseModel):
    operation: OperationOut


class OperationListItem(OperationOut):
    """An operation in a list: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class OperationList(BaseModel):
    operations: list[OperationListItem]
    operations_links: list[PageLink] = Field(default_factory=list)
