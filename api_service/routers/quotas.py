"""``/lbaas/quotas``: Octavia's per-project limits; -1 is unlimited."""

from fastapi import APIRouter, Depends, Response, status
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
from api_service.schemas.fields import ProjectId
from api_service.schemas.quotas import (
    ProjectQuotaOut,
    QuotaBody,
    QuotaList,
    QuotaOut,
    QuotaUpdateBody,
)

router = APIRouter(prefix="/lbaas/quotas", tags=["quotas"])


class _QuotaProject(StringConvertor):
    """A project id in a path, but ``defaults``: that path is the (read-only) default quotas,
    so that ``PUT …/quotas/defaults`` is a 405, as in Octavia, not a project named so."""

    regex = "(?!defaults$)[^/]+"


register_url_convertor("quota_project", _QuotaProject())


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
            ProjectQuotaOut.of(limits, project_id=project)
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
    return QuotaBody(quota=QuotaOut.of(runtime.quotas.defaults))


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
    return QuotaBody(quota=QuotaOut.of(await runtime.quotas.effective(project_id)))


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
    limits = await runtime.quotas.set(project_id, body.quota.limits())
    return QuotaBody(quota=QuotaOut.of(limits))


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
