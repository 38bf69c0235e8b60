"""``/lbaas/healthmonitors``: Octavia v2 paths and bodies; writes answer 202."""

from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from api_service.access import RequestContext
from api_service.context import request_context, writer_context
from api_service.db.listing import ListQuery
from api_service.db.models import HealthMonitor
from api_service.routers.http import (
    CHANGE_PROBLEMS,
    CREATE_PROBLEMS,
    IDEMPOTENCY_KEY,
    LIST_PROBLEMS,
    Links,
    LongPoll,
    accepted,
    accepted_responses,
    common_fields,
    if_match_header,
    link,
    list_openapi,
    list_response,
    long_poll,
    read_responses,
    read_settled,
    settled,
    with_etag,
)
from api_service.routers.listing import list_query_dependency
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.common import IdRef
from api_service.schemas.healthmonitors import (
    HealthMonitorBody,
    HealthMonitorCreateBody,
    HealthMonitorList,
    HealthMonitorOut,
    HealthMonitorUpdateBody,
)
from api_service.services.changes import Accepted
from api_service.services.views import Related, list_page

router = APIRouter(prefix="/lbaas/healthmonitors", tags=["healthmonitors"])
PATH = "healthmonitors"

_ID = "$response.body#/healthmonitor/id"
_THIS = {"path.healthmonitor_id": _ID}
SETTLED = {
    "GetHealthMonitor": settled(
        "getHealthMonitor", "Wait until it is ACTIVE.", healthmonitor_id=_ID
    )
}
NEXT: Links = {
    "UpdateHealthMonitor": link("updateHealthMonitor", "Change it.", _THIS),
    "DeleteHealthMonitor": link("deleteHealthMonitor", "Delete it.", _THIS),
}


def healthmonitor_out(monitor: HealthMonitor, _: Related, ctx: RequestContext) -> HealthMonitorOut:
    return HealthMonitorOut(
        **common_fields(monitor),
        type=monitor.type,
        delay=monitor.delay,
        timeout=monitor.timeout,
        max_retries=monitor.max_retries,
        max_retries_down=monitor.max_retries_down,
        http_method=monitor.http_method,
        url_path=monitor.url_path,
        expected_codes=monitor.expected_codes,
        pools=[IdRef(id=monitor.pool_id)],
    )


def _accepted(
    request: Request, response: Response, change: Accepted, ctx: RequestContext
) -> HealthMonitorBody:
    accepted(request, response, f"{PATH}/{change.target.id}", change)
    assert isinstance(change.target, HealthMonitor)
    return HealthMonitorBody(healthmonitor=healthmonitor_out(change.target, Related(), ctx))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="createHealthMonitor",
    summary="Create a health monitor (asynchronous)",
    responses=accepted_responses(CREATE_PROBLEMS, SETTLED),
    openapi_extra=IDEMPOTENCY_KEY,
)
async def create(
    body: HealthMonitorCreateBody,
    request: Request,
    response: Response,
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> HealthMonitorBody:
    change = await runtime.healthmonitors.create(ctx, body.healthmonitor)
    return _accepted(request, response, change, ctx)


@router.get(
    "",
    operation_id="listHealthMonitors",
    summary="List health monitors",
    response_model=HealthMonitorList,
    responses=LIST_PROBLEMS,
    openapi_extra=list_openapi(HealthMonitor),
)
async def list_(
    request: Request,
    query: ListQuery = Depends(list_query_dependency()),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    page, rel = await list_page(runtime.sessions, ctx, HealthMonitor, query)
    return list_response(request, query, PATH, page, rel, ctx, healthmonitor_out)


@router.get(
    "/{healthmonitor_id}",
    operation_id="getHealthMonitor",
    summary="Show a health monitor",
    responses=read_responses(NEXT),
)
async def get(
    healthmonitor_id: UUID,
    response: Response,
    poll: LongPoll = Depends(long_poll),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> HealthMonitorBody:
    monitor = await read_settled(
        runtime,
        poll,
        lambda: runtime.healthmonitors.get(ctx, healthmonitor_id),
        lambda x: x.loadbalancer_id,
    )
    with_etag(response, monitor)
    return HealthMonitorBody(healthmonitor=healthmonitor_out(monitor, Related(), ctx))


@router.put(
    "/{healthmonitor_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="updateHealthMonitor",
    summary="Update a health monitor (asynchronous)",
    responses=accepted_responses(CHANGE_PROBLEMS, SETTLED),
)
async def update(
    healthmonitor_id: UUID,
    body: HealthMonitorUpdateBody,
    request: Request,
    response: Response,
    if_match: str | None = Depends(if_match_header),
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> HealthMonitorBody:
    change = await runtime.healthmonitors.update(
        ctx, healthmonitor_id, body.healthmonitor, if_match
    )
    return _accepted(request, response, change, ctx)


@router.delete(
    "/{healthmonitor_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="deleteHealthMonitor",
    summary="Delete a health monitor (asynchronous)",
    responses=accepted_responses(CHANGE_PROBLEMS),
)
async def delete(
    healthmonitor_id: UUID,
    request: Request,
    response: Response,
    if_match: str | None = Depends(if_match_header),
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> HealthMonitorBody:
    change = await runtime.healthmonitors.delete(ctx, healthmonitor_id, if_match)
    return _accepted(request, response, change, ctx)
