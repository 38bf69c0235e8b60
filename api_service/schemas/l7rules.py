"""L7 rule bodies (Octavia v2 names and enums); the value allow-lists are ``shared.allow_lists``."""

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict

from api_service.schemas.common import LISTED, PageLink
from api_service.schemas.fields import (
    ProjectId,
    RequestBody,
    StrictBool,
    Tags,
    Timestamp,
    never_null,
)
from shared.status import OperatingStatus, ProvisioningStatus


class RuleType(StrEnum):
    HOST_NAME = "HOST_NAME"
    PATH = "PATH"
    FILE_TYPE = "FILE_TYPE"
    HEADER = "HEADER"
    COOKIE = "COOKIE"


class CompareType(StrEnum):
    REGEX = "REGEX"
    STARTS_WITH = "STARTS_WITH"
    ENDS_WITH = "ENDS_WITH"
    CONTAINS = "CONTAINS"
    EQUAL_TO = "EQUAL_TO"


RuleText = Annotated[str, Strict(), Field(min_length=1, max_length=255)]
"""Checked against the allow-list of the rule's type (``shared.allow_lists.l7_rule_problem``)."""


class L7RuleFields(RequestBody):
    admin_state_up: StrictBool | None = None
    type: RuleType | None = None
    compare_type: CompareType | None = None
    key: RuleText | None = None
    value: RuleText | None = None
    invert: StrictBool | None = None
    tags: Tags | None = None


class L7RuleCreate(L7RuleFields):
    type: RuleType
    compare_type: CompareType
    value: RuleText
    project_id: ProjectId | None = None


class L7RuleUpdate(L7RuleFields):
    model_config = ConfigDict(json_schema_extra=never_null("type", "compare_type", "value"))


class L7RuleCreateBody(RequestBody):
    rule: L7RuleCreate


class L7RuleUpdateBody(RequestBody):
    rule: L7RuleUpdate


class L7RuleOut(BaseModel):
    """Octavia's rule: no name or description."""

    id: UUID
    project_id: str
    tenant_id: str
    admin_state_up: bool
    provisioning_status: ProvisioningStatus
    operating_status: OperatingStatus
    status_reason: str | None
    type: RuleType
    compare_type: CompareType
    key: str | None
    value: str
    invert: bool
    tags: list[str]
    created_at: Timestamp
    updated_at: Timestamp


class L7RuleBody(BaseModel):
    rule: L7RuleOut


class L7RuleListItem(L7RuleOut):
    """A rule in a list: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class L7RuleList(BaseModel):
    rules: list[L7RuleListItem]
    rules_links: list[PageLink] = Field(default_factory=list)
