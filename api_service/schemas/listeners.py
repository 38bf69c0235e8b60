"""Listener bodies (Octavia v2 names, defaults and ranges)."""

from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler, Strict, with_config
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from typing_extensions import TypedDict

from api_service.schemas.common import LISTED, IdRef, ObjectOut, PageLink
from api_service.schemas.fields import (
    INT32_MAX,
    INTEGRAL,
    CidrList,
    DocumentedAs,
    Port,
    ProjectId,
    RequestBody,
    StrictBool,
    Tags,
    Text255,
    required_in_schema,
)

TIMEOUT_MAX = 2_073_600_000  # Octavia: 24 days in ms
Timeout = Annotated[int, Strict(), Field(ge=0, le=TIMEOUT_MAX), INTEGRAL]
ConnectionLimit = Annotated[int, Strict(), Field(ge=-1, le=INT32_MAX), INTEGRAL]


class ListenerProtocol(StrEnum):
    """Octavia's; each provider supports some of them (``GET /v2/lbaas/providers``)."""

    HTTP = "HTTP"
    HTTPS = "HTTPS"
    TCP = "TCP"
    UDP = "UDP"
    SCTP = "SCTP"
    TERMINATED_HTTPS = "TERMINATED_HTTPS"
    PROMETHEUS = "PROMETHEUS"


class InsertHeader(StrEnum):
    """Octavia's: the X-Forwarded-* headers, the client's address as X-Forwarded-IP,
    X-Client-IP or X-Real-IP (octavia-lib 3.8), and the X-SSL-* ones (of the client
    certificate, for TERMINATED_HTTPS listeners only)."""

    X_FORWARDED_FOR = "X-Forwarded-For"
    X_FORWARDED_PORT = "X-Forwarded-Port"
    X_FORWARDED_PROTO = "X-Forwarded-Proto"
    X_FORWARDED_IP = "X-Forwarded-IP"
    X_CLIENT_IP = "X-Client-IP"
    X_REAL_IP = "X-Real-IP"
    X_SSL_CLIENT_VERIFY = "X-SSL-Client-Verify"
    X_SSL_CLIENT_HAS_CERT = "X-SSL-Client-Has-Cert"
    X_SSL_CLIENT_DN = "X-SSL-Client-DN"
    X_SSL_CLIENT_CN = "X-SSL-Client-CN"
    X_SSL_ISSUER = "X-SSL-Issuer"
    X_SSL_CLIENT_SHA1 = "X-SSL-Client-SHA1"
    X_SSL_CLIENT_NOT_BEFORE = "X-SSL-Client-Not-Before"
    X_SSL_CLIENT_NOT_AFTER = "X-SSL-Client-Not-After"


CLIENT_CERTIFICATE_HEADERS = frozenset(h for h in InsertHeader if h.value.startswith("X-SSL-"))


class HeaderSwitch(StrEnum):
    """Octavia takes the header values as the strings "true"/"false"."""

    TRUE = "true"
    FALSE = "false"
    TRUE_CAPITAL = "True"
    FALSE_CAPITAL = "False"

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        """A string with a pattern rather than an enum: client generators name enum members
        after their values in upper case, and "true" and "True" would be the same member."""
        values = "|".join(member.value for member in cls)
        return {
            "type": "string",
            "pattern": f"^(?:{values})$",
            "description": 'Insert the header: "true" or "false" (also "True" or "False").',
        }


InsertHeaders = TypedDict(
    "InsertHeaders",
    {
        "X-Forwarded-For": HeaderSwitch,
        "X-Forwarded-Port": HeaderSwitch,
        "X-Forwarded-Proto": HeaderSwitch,
        "X-Forwarded-IP": HeaderSwitch,
        "X-Client-IP": HeaderSwitch,
        "X-Real-IP": HeaderSwitch,
        "X-SSL-Client-Verify": HeaderSwitch,
        "X-SSL-Client-Has-Cert": HeaderSwitch,
        "X-SSL-Client-DN": HeaderSwitch,
        "X-SSL-Client-CN": HeaderSwitch,
        "X-SSL-Issuer": HeaderSwitch,
        "X-SSL-Client-SHA1": HeaderSwitch,
        "X-SSL-Client-Not-Before": HeaderSwitch,
        "X-SSL-Client-Not-After": HeaderSwitch,
    },
    total=False,
)
"""How ``insert_headers`` is documented: an object with a property for each header that may
be inserted (``InsertHeader``) and no other."""
with_config(ConfigDict(extra="forbid"))(InsertHeaders)
assert set(InsertHeaders.__annotations__) == {header.value for header in InsertHeader}
INSERT_HEADERS = DocumentedAs(InsertHeaders)

HeaderSwitches = Annotated[dict[InsertHeader, HeaderSwitch], INSERT_HEADERS]


class ListenerFields(RequestBody):
    """What may be set on create and on update."""

    name: Text255 | None = None
    description: Text255 | None = None
    admin_state_up: StrictBool | None = None
    connection_limit: ConnectionLimit | None = None
    default_pool_id: UUID | None = None
    timeout_client_data: Timeout | None = None
    timeout_member_connect: Timeout | None = None
    timeout_member_data: Timeout | None = None
    timeout_tcp_inspect: Timeout | None = None
    insert_headers: HeaderSwitches | None = None
    allowed_cidrs: CidrList | None = None
    tags: Tags | None = None


def headers_for_http_only(schema: dict[str, Any]) -> None:
    """``json_schema_extra``: only an HTTP or TERMINATED_HTTPS listener inserts headers (the
    service checks it)."""
    schema["if"] = {
        "properties": {"protocol": {"enum": ["HTTP", "TERMINATED_HTTPS"]}},
        "required": ["protocol"],
    }
    nothing = {"anyOf": [{"type": "null"}, {"type": "object", "maxProperties": 0}]}
    schema["else"] = {"properties": {"insert_headers": nothing}}


def _new_listener(schema: dict[str, Any]) -> None:
    required_in_schema("loadbalancer_id")(schema)
    headers_for_http_only(schema)


class ListenerCreate(ListenerFields):
    model_config = ConfigDict(json_schema_extra=_new_listener)

    loadbalancer_id: UUID | None = None
    protocol: ListenerProtocol
    protocol_port: Port
    project_id: ProjectId | None = None


class ListenerUpdate(ListenerFields):
    pass


class ListenerCreateBody(RequestBody):
    listener: ListenerCreate


class ListenerUpdateBody(RequestBody):
    listener: ListenerUpdate


class ListenerOut(ObjectOut):
    protocol: ListenerProtocol
    protocol_port: int
    connection_limit: int
    default_pool_id: UUID | None
    loadbalancers: list[IdRef]
    timeout_client_data: int
    timeout_member_connect: int
    timeout_member_data: int
    timeout_tcp_inspect: int
    insert_headers: Annotated[dict[str, str], INSERT_HEADERS]
    allowed_cidrs: list[str] | None
    l7policies: list[IdRef] = Field(default_factory=list)
    sni_container_refs: list[str] = Field(default_factory=list)
    default_tls_container_ref: str | None = None


class ListenerBody(BaseModel):
    listener: ListenerOut


class ListenerListItem(ListenerOut):
    """A listener in a list: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class ListenerList(BaseModel):
    listeners: list[ListenerListItem]
    listeners_links: list[PageLink] = Field(default_factory=list)
