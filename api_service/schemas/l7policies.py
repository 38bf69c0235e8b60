"""L7 policy bodies (Octavia v2 names, enums and defaults)."""

from enum import IntEnum, StrEnum
from typing import Annotated, Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict

from api_service.schemas.common import LISTED, IdRef, ObjectOut, PageLink
from api_service.schemas.fields import (
    INT32_MAX,
    INTEGRAL,
    DocumentedAs,
    ProjectId,
    RequestBody,
    StrictBool,
    Tags,
    Text255,
    never_null,
    required_in_schema,
)
from api_service.schemas.l7rules import L7RuleCreate
from shared.allow_lists import MAX_L7_RULES_PER_POLICY


class L7Action(StrEnum):
    REJECT = "REJECT"
    REDIRECT_TO_URL = "REDIRECT_TO_URL"
    REDIRECT_TO_POOL = "REDIRECT_TO_POOL"
    REDIRECT_PREFIX = "REDIRECT_PREFIX"


Position = Annotated[int, Strict(), Field(ge=1, le=INT32_MAX), INTEGRAL]


# How ``RedirectCode`` is documented: an enum with a name of its own (a ``Literal`` would be
# an enum of each model that uses it, in a generated client).
class RedirectHttpCode(IntEnum):
    """The HTTP code of a redirect (302 by default)."""

    MOVED_PERMANENTLY = 301
    FOUND = 302
    SEE_OTHER = 303
    TEMPORARY_REDIRECT = 307
    PERMANENT_REDIRECT = 308


REDIRECT_HTTP_CODE = DocumentedAs(RedirectHttpCode)
RedirectCode = Annotated[Literal[301, 302, 303, 307, 308], REDIRECT_HTTP_CODE]
assert set(get_args(get_args(RedirectCode)[0])) == set(RedirectHttpCode)
Url = Annotated[str, Strict(), Field(max_length=255)]
"""Checked whole by ``shared.allow_lists.l7_policy_problem`` when the policy is settled."""


class L7PolicyFields(RequestBody):
    name: Text255 | None = None
    description: Text255 | None = None
    admin_state_up: StrictBool | None = None
    action: L7Action | None = None
    position: Position | None = Field(
        default=None, description="From 1; inserting renumbers the others. Default: the last."
    )
    redirect_pool_id: UUID | None = None
    redirect_url: Url | None = None
    redirect_prefix: Url | None = None
    redirect_http_code: RedirectCode | None = None
    tags: Tags | None = None


class L7PolicyCreate(L7PolicyFields):
    model_config = ConfigDict(json_schema_extra=required_in_schema("listener_id"))

    action: L7Action
    listener_id: UUID | None = None
    project_id: ProjectId | None = None
    rules: Annotated[list[L7RuleCreate], Field(max_length=MAX_L7_RULES_PER_POLICY)] = Field(
        default_factory=list
    )


class L7PolicyUpdate(L7PolicyFields):
    model_config = ConfigDict(json_schema_extra=never_null("action"))


class L7PolicyCreateBody(RequestBody):
    l7policy: L7PolicyCreate


class L7PolicyUpdateBody(RequestBody):
    l7policy: L7PolicyUpdate


class L7PolicyOut(ObjectOut):
    action: L7Action
    listener_id: UUID
    position: int
    redirect_pool_id: UUID | None
    redirect_url: str | None
    redirect_prefix: str | None
    redirect_http_code: Annotated[int, REDIRECT_HTTP_CODE] | None
    rules: list[IdRef]


class L7PolicyBody(BaseModel):
    l7policy: L7PolicyOut


class L7PolicyListItem(L7PolicyOut):
    """An L7 policy in a list: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class L7PolicyList(BaseModel):
    l7policies: list[L7PolicyListItem]
    l7policies_links: list[PageLink] = Field(default_factory=list)
