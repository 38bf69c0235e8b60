"""``/lbaas/quotas``: Octavia's per-project limits; -1 is unlimited."""

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, Field, Strict
from starlette.convertors import StringConvertor, register_url_convertor

from api_service.access import RequestContext
from api_service.context import (
    admin_context,
    global_reader_context,
    request_context,
)
from api_service.errors import Forbidden
from api_service.problems import problems
from api_service.routers.http import CHECKED
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.fields import INT32_MAX, INTEGRAL, ProjectId, RequestBody

router = APIRouter(prefix="/lbaas/quotas", tags=["quotas"])


class _QuotaProject(StringConvertor):
    """A project id in a path, but ``defaults``: that path is the (read-only) default quotas,
    so that ``PUT …/quotas/defaults`` is a 405, as in Octavia, not a project named so."""

    regex = "(?!defaults$)[^/]+"


register_url_convertor("quota_project", _QuotaProject())

Limit = Annotated[int, Strict(), Field(ge=-1, le=INT32_MAX), INTEGRAL]
"""Objects a project may have; -1 is unlimited."""


class QuotaFields(RequestBody):
    """The limits to set; a limit sent as null goes back to the default, one left out stays."""

    loadbalancer: Limit | None = None
    listener: Limit | None = None
    pool: Limit | None = None
    member: Limit | None = None
    healthmonitor: Limit | None = None
    l7policy: Limit | None = None
    l7rule: Limit | None = None


class QuotaUpdateBody(RequestBody):
    quota: QuotaFields


class QuotaOut(BaseModel):
    loadbalancer: int
    listener: int
    pool: int
    member: int
    healthmonitor: int
    l7policy: int
    l7rule: int


class ProjectQuotaOut(QuotaOut):
    project_id: str


class QuotaBody(BaseModel):
    quota: QuotaOut


class QuotaList(BaseModel):
    quotas: list[ProjectQuotaOut]


@router.get(
    "",
    operation_id="listQuotas",
    summary="Quotas of every project with its own",
    responses=problems(*CHECKED, 403),
)
async def list_(
    _: RequestContext = Depends(global_reader_context), runtime: Runtime = Depends(get_runtime)
) -> QuotaList:
    return QuotaList(
        quotas=[
            ProjectQuotaOut(project_id=project, **limits)
            for project, limits in await runtime.quotas.projects()
        ]
    )


@router.get(
    "/defaults",
    operation_id="getQuotaDefaults",
    summary="The default quotas",
    responses=problems(*CHECKED),
)
async def defaults(
    _: RequestContext = Depends(request_context), runtime: Runtime = Depends(get_runtime)
) -> QuotaBody:
    return QuotaBody(quota=QuotaOut(**runtime.quotas.defaults))


@router.get(
    "/{project_id:quota_project}",
    operation_id="getQuota",
    summary="A project's quotas",
    responses=problems(*CHECKED, 400, 403),
)
async def get(
    project_id: ProjectId,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> QuotaBody:
    if not ctx.owns(project_id):
        raise Forbidden("Only your own project's quotas are visible.")
    return QuotaBody(quota=QuotaOut(**await runtime.quotas.effective(project_id)))


@router.put(
    "/{project_id:quota_project}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="updateQuota",
    summary="Set a project's quotas (null: back to the default)",
    responses=problems(*CHECKED, 400, 403, 413),
)
async def update(
    project_id: ProjectId,
    body: QuotaUpdateBody,
    _: RequestContext = Depends(admin_context),
    runtime: Runtime = Depends(get_runtime),
) -> QuotaBody:
    limits = body.quota.model_dump(exclude_unset=True)
    return QuotaBody(quota=QuotaOut(**await runtime.quotas.set(project_id, limits)))


@router.delete(
    "/{project_id:quota_project}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="resetQuota",
    summary="Put a project back on the default quotas",
    response_class=Response,
    responses={
        202: {"description": "Back on the defaults (no body)", "content": None},
        **problems(*CHECKED, 400, 403, 413),
    },
)
async def reset(
    project_id: ProjectId,
    _: RequestContext = Depends(admin_context),
    runtime: Runtime = Depends(get_runtime),
) -> Response:
    await runtime.quotas.reset(project_id)
    return Response(status_code=status.HTTP_202_ACCEPTED)
