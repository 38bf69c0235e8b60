"""Pool bodies (Octavia v2 names, defaults and ranges)."""

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from api_service.schemas.common import IdRef, ObjectOut
from api_service.schemas.fields import CookieName, RequestBody, StrictBool, StrictInt, Tags, Text255


class PoolProtocol(StrEnum):
    HTTP = "HTTP"
    HTTPS = "HTTPS"
    TCP = "TCP"


class LbAlgorithm(StrEnum):
    ROUND_ROBIN = "ROUND_ROBIN"
    LEAST_CONNECTIONS = "LEAST_CONNECTIONS"
    SOURCE_IP = "SOURCE_IP"


class PersistenceType(StrEnum):
    SOURCE_IP = "SOURCE_IP"
    HTTP_COOKIE = "HTTP_COOKIE"
    APP_COOKIE = "APP_COOKIE"


class SessionPersistence(RequestBody):
    type: PersistenceType
    cookie_name: CookieName | None = None
    persistence_timeout: Annotated[StrictInt, Field(ge=0)] | None = None
    persistence_granularity: str | None = Field(default=None, pattern=r"^[0-9a-fA-F.:/]{1,64}$")

    @model_validator(mode="after")
    def _cookie_only_for_app_cookie(self) -> "SessionPersistence":
        if self.type is PersistenceType.APP_COOKIE and not self.cookie_name:
            raise ValueError("cookie_name is required for APP_COOKIE persistence")
        if self.type is not PersistenceType.APP_COOKIE and self.cookie_name:
            raise ValueError(f"cookie_name is only for APP_COOKIE, not {self.type.value}")
        return self


# listener protocol -> pool protocols it can forward to (Octavia's VALID_LISTENER_POOL_PROTOCOL_MAP)
COMPATIBLE_PROTOCOLS: dict[str, frozenset[str]] = {
    "HTTP": frozenset({"HTTP"}),
    "HTTPS": frozenset({"HTTPS", "TCP"}),
    "TCP": frozenset({"TCP", "HTTP", "HTTPS"}),
}


class PoolFields(RequestBody):
    name: Text255 | None = None
    description: Text255 | None = None
    admin_state_up: StrictBool | None = None
    lb_algorithm: LbAlgorithm | None = None
    session_persistence: SessionPersistence | None = None
    tags: Tags | None = None


class PoolCreate(PoolFields):
    lb_algorithm: LbAlgorithm
    protocol: PoolProtocol
    listener_id: UUID | None = None
    loadbalancer_id: UUID | None = None
    project_id: str | None = None


class PoolUpdate(PoolFields):
    pass


class PoolCreateBody(RequestBody):
    pool: PoolCreate


class PoolUpdateBody(RequestBody):
    pool: PoolUpdate


class SessionPersistenceOut(BaseModel):
    type: str
    cookie_name: str | None = None
    persistence_timeout: int | None = None
    persistence_granularity: str | None = None


class PoolOut(ObjectOut):
    protocol: str
    lb_algorithm: str
    session_persistence: SessionPersistenceOut | None
    listeners: list[IdRef]
    loadbalancers: list[IdRef]
    members: list[IdRef]
    healthmonitor_id: UUID | None
    tls_enabled: bool = False


class PoolBody(BaseModel):
    pool: PoolOut


class PoolList(BaseModel):
    pools: list[PoolOut]
    pools_links: list[dict[str, str]] = Field(default_factory=list)
