"""Bodies of the Keystone v3 identity API (``/identity/v3``) as keystoneauth, openstacksdk,
openstackclient and gophercloud send and read them: ``POST /auth/tokens`` with an
application credential, the token it answers (with its catalog), projects and users."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, Strict, WithJsonSchema

from api_service.schemas.fields import ProjectId, RequestBody, Text255, needed_unless


def keystone_timestamp(moment: datetime) -> str:
    """As Keystone writes a moment: UTC with microseconds and a ``Z``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


KeystoneTimestamp = Annotated[
    datetime,
    PlainSerializer(keystone_timestamp, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "UTC, with microseconds (as Keystone answers).",
        }
    ),
]
Interface = Literal["public", "internal", "admin"]
Secret = Annotated[str, Strict(), Field(min_length=1, max_length=1024)]


def _name_and_user_unless_id(schema: dict[str, Any]) -> None:
    """``needed_unless("name", "id")``, and ``user`` with the name."""
    needed_unless("name", "id")(schema)
    declared = schema["properties"]["user"]
    (user,) = [b for b in declared["anyOf"] if b.get("type") != "null"]
    schema["then"]["required"].append("user")
    schema["then"]["properties"]["user"] = user


class DomainRef(RequestBody):
    """A domain by id or name: there is one, ``default`` (named ``Default``)."""

    id: Text255 | None = None
    name: Text255 | None = None


class UserRef(RequestBody):
    """The user of an application credential named by its name: a project's user, whose id
    and name are the project id (one of them is needed)."""

    model_config = ConfigDict(json_schema_extra=needed_unless("name", "id"))

    id: ProjectId | None = None
    name: ProjectId | None = None
    domain: DomainRef | None = None


class ApplicationCredentialAuth(RequestBody):
    """A token of this service: by ``id`` (the token's id), or by ``name`` and ``user`` (the
    token's name and project); ``secret`` is the token's value either way."""

    model_config = ConfigDict(json_schema_extra=_name_and_user_unless_id)

    id: UUID | None = None
    name: Text255 | None = None
    user: UserRef | None = None
    secret: Secret


class IdentityMethods(RequestBody):
    methods: Annotated[
        list[Literal["application_credential"]], Field(min_length=1, max_length=1)
    ] = Field(description="Application credentials (this service's tokens) only.")
    application_credential: ApplicationCredentialAuth


class ProjectScope(RequestBody):
    """A project by id or by name (one of them is needed)."""

    model_config = ConfigDict(json_schema_extra=needed_unless("name", "id"))

    id: ProjectId | None = None
    name: ProjectId | None = None
    domain: DomainRef | None = None


class Scope(RequestBody):
    """An application credential is scoped to its own project: a scope may only repeat it."""

    project: ProjectScope


class Auth(RequestBody):
    identity: IdentityMethods
    scope: Scope | None = None


class AuthBody(RequestBody):
    auth: Auth


class Domain(BaseModel):
    id: str
    name: str


class TokenUser(BaseModel):
    id: str
    name: str
    domain: Domain
    password_expires_at: None = None


class TokenProject(BaseModel):
    id: str
    name: str
    domain: Domain


class TokenRole(BaseModel):
    id: str
    name: str


class Endpoint(BaseModel):
    id: str
    interface: Interface
    region: str
    region_id: str
    url: str


class CatalogService(BaseModel):
    id: str
    type: str
    name: str
    endpoints: list[Endpoint]


class TokenCredential(BaseModel):
    id: UUID
    name: str
    restricted: bool = True


class IdentityToken(BaseModel):
    methods: list[str]
    user: TokenUser
    project: TokenProject
    roles: list[TokenRole]
    catalog: list[CatalogService] = Field(description="Empty when asked with ?nocatalog.")
    issued_at: KeystoneTimestamp
    expires_at: KeystoneTimestamp
    audit_ids: list[str]
    is_domain: bool = False
    application_credential: TokenCredential


class IdentityTokenBody(BaseModel):
    token: IdentityToken


class SelfLink(BaseModel):
    self: str


class ListLinks(BaseModel):
    self: str
    previous: None = None
    next: None = None


class ProjectOut(BaseModel):
    id: str
    name: str
    domain_id: str
    parent_id: str
    description: str = ""
    enabled: bool = True
    is_domain: bool = False
    tags: list[str] = Field(default_factory=list)
    options: dict[str, str] = Field(default_factory=dict)
    links: SelfLink


class ProjectBody(BaseModel):
    project: ProjectOut


class ProjectList(BaseModel):
    projects: list[ProjectOut]
    links: ListLinks


class UserOut(BaseModel):
    id: str
    name: str
    domain_id: str
    enabled: bool = True
    password_expires_at: None = None
    links: SelfLink


class UserBody(BaseModel):
    user: UserOut
