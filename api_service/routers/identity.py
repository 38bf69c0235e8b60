"""``/identity``: Keystone v3 for this service alone, so that OpenStack clients work with an
ordinary ``clouds.yaml`` (``auth_type: v3applicationcredential``) and no Keystone.

Version discovery (open), ``POST /v3/auth/tokens`` (open: the credential is in the body),
token validation, and the projects and users clients look up by name. The catalog lists
this service as ``load-balancer``, ``network`` and ``identity``, at ``LBAAS_PUBLIC_URL``
(never at the request's Host).
"""

import uuid

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from pydantic import BaseModel, Field

from api_service.access import RequestContext
from api_service.context import request_context
from api_service.errors import Unauthenticated
from api_service.problems import problems
from api_service.routers.http import CHECKED, absolute_url
from api_service.routers.root import Link
from api_service.runtime import Runtime, get_runtime, runtime_of
from api_service.schemas.fields import ProjectId, not_null
from api_service.schemas.identity import (
    AuthBody,
    CatalogService,
    Domain,
    Endpoint,
    IdentityToken,
    IdentityTokenBody,
    Interface,
    ListLinks,
    ProjectBody,
    ProjectList,
    ProjectOut,
    SelfLink,
    TokenCredential,
    TokenProject,
    TokenRole,
    TokenUser,
    UserBody,
    UserOut,
)
from api_service.schemas.links import link
from api_service.services.identity import DOMAIN_ID, DOMAIN_NAME, KeystoneToken

router = APIRouter(prefix="/identity", tags=["identity"])

VERSION = "v3.14"
"""The Keystone API version this answers as (Keystone's own since its Ussuri release)."""
SERVICES = (
    ("load-balancer", "octavia", ""),
    ("network", "neutron", ""),
    ("identity", "keystone", "/identity"),
)
"""The catalog: each service's type, name and path under the public URL."""
INTERFACES: tuple[Interface, ...] = ("public", "internal", "admin")
_IDS = uuid.UUID("0b5d3c1e-8f6a-4e2b-9c7d-1a2b3c4d5e6f")
"""Namespace of the catalog's and the roles' ids (stable: made from their names)."""
_SUBJECT_TOKEN = {
    "X-Subject-Token": {
        "description": "The Keystone token: send it as X-Auth-Token",
        "required": True,
        "schema": {"type": "string"},
    }
}
_NO_CATALOG = Query(
    default=None,
    description="Present (with any value, or none): answer without the catalog.",
    json_schema_extra=not_null,
)


class MediaType(BaseModel):
    base: str
    type: str


class IdentityVersion(BaseModel):
    id: str
    status: str
    updated: str
    links: list[Link]
    media_types: list[MediaType] = Field(alias="media-types")


class IdentityVersionValues(BaseModel):
    values: list[IdentityVersion]


class IdentityVersions(BaseModel):
    versions: IdentityVersionValues


class IdentityVersionBody(BaseModel):
    version: IdentityVersion


def _version(request: Request) -> IdentityVersion:
    return IdentityVersion.model_validate(
        {
            "id": VERSION,
            "status": "stable",
            "updated": "2020-04-07T00:00:00Z",
            "links": [Link(href=absolute_url(request, "/identity/v3/"), rel="self")],
            "media-types": [
                MediaType(
                    base="application/json", type="application/vnd.openstack.identity-v3+json"
                )
            ],
        }
    )


@router.get(
    "",
    status_code=status.HTTP_300_MULTIPLE_CHOICES,
    operation_id="listIdentityVersions",
    summary="Keystone API versions (for client discovery), as Keystone answers: 300",
    responses={300: {"description": "The versions (v3 only)"}},
)
@router.get("/", include_in_schema=False, status_code=status.HTTP_300_MULTIPLE_CHOICES)
async def versions(request: Request) -> IdentityVersions:
    return IdentityVersions(versions=IdentityVersionValues(values=[_version(request)]))


@router.get("/v3", operation_id="showIdentityVersion", summary="The Keystone v3 API version")
@router.get("/v3/", include_in_schema=False)
async def version(request: Request) -> IdentityVersionBody:
    return IdentityVersionBody(version=_version(request))


@router.post(
    "/v3/auth/tokens",
    status_code=status.HTTP_201_CREATED,
    operation_id="createIdentityToken",
    summary="Exchange an application credential (a token's id and secret) for a Keystone token",
    responses={
        201: {
            "headers": _SUBJECT_TOKEN,
            "links": {
                "ValidateIdentityToken": link(
                    "validateIdentityToken",
                    "Validate it (sent as X-Auth-Token too).",
                    {"header.X-Subject-Token": "$response.header.X-Subject-Token"},
                ),
                "ShowIdentityProject": link(
                    "showIdentityProject",
                    "Show its project.",
                    {"path.project_id": "$response.body#/token/project/id"},
                ),
            },
        },
        **problems(400, 401, 413, 429, 503),
    },
)
async def issue_token(
    body: AuthBody,
    request: Request,
    response: Response,
    nocatalog: str | None = _NO_CATALOG,
    runtime: Runtime = Depends(get_runtime),
) -> IdentityTokenBody:
    address = request.client.host if request.client else None
    runtime.failed_authentications.check(address)
    try:
        issued = await runtime.identity.issue(body.auth)
    except Unauthenticated:
        runtime.failed_authentications.record(address)
        raise
    runtime.rate_limits.charge(issued.token.id)
    response.headers["X-Subject-Token"] = issued.value
    return _token_body(request, issued, with_catalog=nocatalog is None)


@router.get(
    "/v3/auth/tokens",
    operation_id="validateIdentityToken",
    summary="Validate a Keystone token (X-Subject-Token): the caller's own, or any for an "
    "admin or a global observer",
    responses={200: {"headers": _SUBJECT_TOKEN}, **problems(*CHECKED, 400, 404)},
)
async def validate_token(
    request: Request,
    response: Response,
    subject: str = Header(alias="X-Subject-Token", description="The token to validate."),
    nocatalog: str | None = _NO_CATALOG,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> IdentityTokenBody:
    validated = await runtime.identity.validate(subject, ctx)
    response.headers["X-Subject-Token"] = validated.value
    return _token_body(request, validated, with_catalog=nocatalog is None)


@router.get(
    "/v3/auth/projects",
    operation_id="listIdentityAuthProjects",
    summary="The projects the caller's token may be scoped to: its own",
    responses=problems(*CHECKED),
)
async def auth_projects(
    request: Request, ctx: RequestContext = Depends(request_context)
) -> ProjectList:
    return _project_list(request, [ctx.project_id], "/identity/v3/auth/projects")


@router.get(
    "/v3/projects",
    operation_id="listIdentityProjects",
    summary="Projects: the caller's own; every known one for an admin or a global observer",
    responses=problems(*CHECKED, 400),
)
async def list_projects(
    request: Request,
    name: ProjectId | None = Query(
        default=None,
        description="Only the project of this name (its id).",
        json_schema_extra=not_null,
    ),
    domain_id: str | None = Query(
        default=None, description="Only projects of this domain.", json_schema_extra=not_null
    ),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> ProjectList:
    projects = (
        [] if domain_id not in (None, DOMAIN_ID) else await runtime.identity.projects(ctx, name)
    )
    return _project_list(request, projects, "/identity/v3/projects")


@router.get(
    "/v3/projects/{project_id}",
    operation_id="showIdentityProject",
    summary="A project (its name is its id)",
    responses=problems(*CHECKED, 404),
)
async def show_project(
    project_id: str,
    request: Request,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> ProjectBody:
    return ProjectBody(project=_project(request, await runtime.identity.project(ctx, project_id)))


@router.get(
    "/v3/users/{user_id}",
    operation_id="showIdentityUser",
    summary="A user: each project has one, of the project's id, whose application "
    "credentials its tokens are",
    responses=problems(*CHECKED, 404),
)
async def show_user(
    user_id: str,
    request: Request,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> UserBody:
    user = await runtime.identity.project(ctx, user_id)
    return UserBody(
        user=UserOut(
            id=user,
            name=user,
            domain_id=DOMAIN_ID,
            links=SelfLink(self=absolute_url(request, f"/identity/v3/users/{user}")),
        )
    )


def _token_body(request: Request, token: KeystoneToken, *, with_catalog: bool) -> IdentityTokenBody:
    stored = token.token
    domain = Domain(id=DOMAIN_ID, name=DOMAIN_NAME)
    return IdentityTokenBody(
        token=IdentityToken(
            methods=["application_credential"],
            user=TokenUser(id=stored.project_id, name=stored.project_id, domain=domain),
            project=TokenProject(id=stored.project_id, name=stored.project_id, domain=domain),
            roles=[TokenRole(id=_stable_id("role", stored.role), name=stored.role)],
            catalog=_catalog(request) if with_catalog else [],
            issued_at=token.issued_at,
            expires_at=token.expires_at,
            audit_ids=[token.audit_id],
            application_credential=TokenCredential(id=stored.id, name=stored.name),
        )
    )


def _catalog(request: Request) -> list[CatalogService]:
    region = runtime_of(request).settings.identity_region
    return [
        CatalogService(
            id=_stable_id("service", kind),
            type=kind,
            name=name,
            endpoints=[
                Endpoint(
                    id=_stable_id("endpoint", f"{kind} {interface}"),
                    interface=interface,
                    region=region,
                    region_id=region,
                    url=absolute_url(request, path),
                )
                for interface in INTERFACES
            ],
        )
        for kind, name, path in SERVICES
    ]


def _stable_id(kind: str, name: str) -> str:
    return uuid.uuid5(_IDS, f"{kind}:{name}").hex


def _project(request: Request, project_id: str) -> ProjectOut:
    return ProjectOut(
        id=project_id,
        name=project_id,
        domain_id=DOMAIN_ID,
        parent_id=DOMAIN_ID,
        links=SelfLink(self=absolute_url(request, f"/identity/v3/projects/{project_id}")),
    )


def _project_list(request: Request, projects: list[str], path: str) -> ProjectList:
    return ProjectList(
        projects=[_project(request, project) for project in projects],
        links=ListLinks(self=absolute_url(request, path)),
    )
