"""Health monitor bodies (Octavia v2 names, defaults and ranges)."""

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict

from api_service.schemas.common import LISTED, IdRef, ObjectOut, PageLink
from api_service.schemas.fields import (
    INTEGRAL,
    ExpectedCodes,
    ProjectId,
    RequestBody,
    StrictBool,
    Tags,
    Text255,
    UrlPath,
    never_null,
    required_in_schema,
)

Seconds = Annotated[int, Strict(), Field(ge=0, le=86_400), INTEGRAL]
Retries = Annotated[int, Strict(), Field(ge=1, le=10), INTEGRAL]


class MonitorType(StrEnum):
    """Octavia's; each provider supports some of them (``GET /v2/lbaas/providers``)."""

    HTTP = "HTTP"
    HTTPS = "HTTPS"
    TCP = "TCP"
    PING = "PING"
    TLS_HELLO = "TLS-HELLO"
    UDP_CONNECT = "UDP-CONNECT"
    SCTP = "SCTP"


class HttpMethod(StrEnum):
    GET = "GET"
    HEAD = "HEAD"
    POST = "POST"
    PUT = "PUT"
    DELETE = "DELETE"
    TRACE = "TRACE"
    OPTIONS = "OPTIONS"
    PATCH = "PATCH"
    CONNECT = "CONNECT"


HTTP_TYPES = frozenset({MonitorType.HTTP, MonitorType.HTTPS})


class HealthMonitorFields(RequestBody):
    name: Text255 | None = None
    admin_state_up: StrictBool | None = None
    delay: Seconds | None = None
    timeout: Seconds | None = None
    max_retries: Retries | None = None
    max_retries_down: Retries | None = None
    http_method: HttpMethod | None = None
    url_path: UrlPath | None = None
    expected_codes: ExpectedCodes | None = None
    tags: Tags | None = None


class HealthMonitorCreate(HealthMonitorFields):
    model_config = ConfigDict(json_schema_extra=required_in_schema("pool_id"))

    pool_id: UUID | None = None
    type: MonitorType
    delay: Seconds
    timeout: Seconds
    max_retries: Retries
    project_id: ProjectId | None = None


class HealthMonitorUpdate(HealthMonitorFields):
    model_config = ConfigDict(json_schema_extra=never_null("delay", "timeout", "max_retries"))


class HealthMonitorCreateBody(RequestBody):
    healthmonitor: HealthMonitorCreate


class HealthMonitorUpdateBody(RequestBody):
    healthmonitor: HealthMonitorUpdate


class HealthMonitorOut(ObjectOut):
    type: MonitorType
    delay: int
    timeout: int
    max_retries: int
    max_retries_down: int
    http_method: HttpMethod | None
    url_path: str | None
    expected_codes: str | None
    pools: list[IdRef]


class HealthMonitorBody(BaseModel):
    healthmonitor: HealthMonitorOut


class HealthMonitorListItem(HealthMonitorOut):
    """A health monitor in a list: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class HealthMonitorList(BaseModel):
    healthmonitors: list[HealthMonitorListItem]
    healthmonitors_links: list[PageLink] = Field(default_factory=list)
