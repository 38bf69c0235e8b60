"""Pool bodies (Octavia v2 names, defaults and ranges)."""

from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, Strict

from api_service.schemas.common import LISTED, IdRef, ObjectOut, PageLink
from api_service.schemas.fields import (
    INT32_MAX,
    INTEGRAL,
    CookieName,
    ProjectId,
    RequestBody,
    StrictBool,
    Tags,
    Text255,
    needed_unless,
    never_null,
)


class PoolProtocol(StrEnum):
    """Octavia's; each provider supports some of them (``GET /v2/lbaas/providers``). PROXY
    and PROXYV2 members receive the PROXY protocol header (v1, v2) first."""

    HTTP = "HTTP"
    HTTPS = "HTTPS"
    TCP = "TCP"
    PROXY = "PROXY"
    PROXYV2 = "PROXYV2"
    UDP = "UDP"
    SCTP = "SCTP"


class LbAlgorithm(StrEnum):
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_CONNECTIONS = "LEAST_CONNECTIONS"
    SOURCE_IP = "SOURCE_IP"
    SOURCE_IP_PORT = "SOURCE_IP_PORT"


class PersistenceType(StrEnum):
    SOURCE_IP = "SOURCE_IP"
    HTTP_COOKIE = "HTTP_COOKIE"
    APP_COOKIE = "APP_COOKIE"


class _Persistence(RequestBody):
    persistence_timeout: Annotated[int, Strict(), Field(ge=0, le=INT32_MAX), INTEGRAL] | None = None
    persistence_granularity: str | None = Field(default=None, pattern=r"^[0-9a-fA-F.:/]{1,64}$")


class SourceIpPersistence(_Persistence):
    type: Literal["SOURCE_IP"]
    cookie_name: None = None


class HttpCookiePersistence(_Persistence):
    type: Literal["HTTP_COOKIE"]
    cookie_name: None = None


class AppCookiePersistence(_Persistence):
    type: Literal["APP_COOKIE"]
    cookie_name: CookieName


SessionPersistence = Annotated[
    SourceIpPersistence | HttpCookiePersistence | AppCookiePersistence,
    Field(discriminator="type", description="cookie_name is for APP_COOKIE, which requires it."),
]


class PoolFields(RequestBody):
    name: Text255 | None = None
    description: Text255 | None = None
    admin_state_up: StrictBool | None = None
    lb_algorithm: LbAlgorithm | None = None
    session_persistence: SessionPersistence | None = None
    tags: Tags | None = None


class PoolCreate(PoolFields):
    """A new pool: of the load balancer ``loadbalancer_id``, or the default pool of the
    listener ``listener_id`` (then on that listener's load balancer); one of them is needed
    (a body with neither is refused with 400)."""

    model_config = ConfigDict(json_schema_extra=needed_unless("loadbalancer_id", "listener_id"))

    lb_algorithm: LbAlgorithm
    protocol: PoolProtocol
    listener_id: UUID | None = Field(
        default=None,
        description=(
            "Make the pool this listener's default pool, on its load balancer "
            "(this or loadbalancer_id is needed)."
        ),
    )
    loadbalancer_id: UUID | None = Field(
        default=None,
        description="The pool's load balancer (this or listener_id is needed).",
    )
    project_id: ProjectId | None = None


class PoolUpdate(PoolFields):
    model_config = ConfigDict(json_schema_extra=never_null("lb_algorithm"))


class PoolCreateBody(RequestBody):
    pool: PoolCreate


class PoolUpdateBody(RequestBody):
    pool: PoolUpdate


class SessionPersistenceOut(BaseModel):
    type: PersistenceType
    cookie_name: str | None = None
    persistence_timeout: int | None = None
    persistence_granularity: str | None = None


class PoolOut(ObjectOut):
    protocol: PoolProtocol
    lb_algorithm: LbAlgorithm
    session_persistence: SessionPersistenceOut | None
    listeners: list[IdRef]
    loadbalancers: list[IdRef]
    members: list[IdRef]
    healthmonitor_id: UUID | None
    tls_enabled: bool = False


class PoolBody(BaseModel):
    pool: PoolOut


class PoolListItem(PoolOut):
    """A pool in a list: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class PoolList(BaseModel):
    pools: list[PoolListItem]
    pools_links: list[PageLink] = Field(default_factory=list)
