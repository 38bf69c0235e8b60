"""``/lbaas/listeners``: Octavia v2 paths and bodies; writes answer 202."""

from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from api_service.access import RequestContext
from api_service.context import request_context, writer_context
from api_service.db.listing import ListQuery
from api_service.db.models import Listener
from api_service.routers.http import (
    CHANGE_PROBLEMS,
    CREATE_PROBLEMS,
    IDEMPOTENCY_KEY,
    LIST_PROBLEMS,
    READ_PROBLEMS,
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
    stats_body,
    with_etag,
)
from api_service.routers.listing import list_query_dependency
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.common import IdRef
from api_service.schemas.listeners import (
    ListenerBody,
    ListenerCreateBody,
    ListenerList,
    ListenerOut,
    ListenerUpdateBody,
)
from api_service.schemas.loadbalancers import StatsBody
from api_service.services.changes import Accepted
from api_service.services.views import Related, list_page

router = APIRouter(prefix="/lbaas/listeners", tags=["listeners"])
PATH = "listeners"

_ID = "$response.body#/listener/id"
_THIS = {"path.listener_id": _ID}
SETTLED = {"GetListener": settled("getListener", "Wait until it is ACTIVE.", listener_id=_ID)}
NEXT: Links = {
    "CreatePool": link("createPool", "Add its default pool.", body={"pool": {"listener_id": _ID}}),
    "UpdateListener": link("updateListener", "Change it.", _THIS),
    "DeleteListener": link("deleteListener", "Delete it.", _THIS),
    "GetListenerStats": link("getListenerStats", "Its traffic counters.", _THIS),
}


def listener_out(listener: Listener, _: Related, ctx: RequestContext) -> ListenerOut:
    return ListenerOut(
        **common_fields(listener),
        protocol=listener.protocol,
        protocol_port=listener.protocol_port,
        connection_limit=listener.connection_limit,
        default_pool_id=listener.default_pool_id,
        loadbalancers=[IdRef(id=listener.loadbalancer_id)],
        timeout_client_data=listener.timeout_client_data,
        timeout_member_connect=listener.timeout_member_connect,
        timeout_member_data=listener.timeout_member_data,
        timeout_tcp_inspect=listener.timeout_tcp_inspect,
        insert_headers=dict(listener.insert_headers),
        allowed_cidrs=list(listener.allowed_cidrs) or None,
    )


def _accepted(
    request: Request, response: Response, change: Accepted, ctx: RequestContext
) -> ListenerBody:
    accepted(request, response, f"{PATH}/{change.target.id}", change)
    assert isinstance(change.target, Listener)
    return ListenerBody(listener=listener_out(change.target, Related(), ctx))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="createListener",
    summary="Create a listener (asynchronous)",
    responses=accepted_responses(CREATE_PROBLEMS, SETTLED),
    openapi_extra=IDEMPOTENCY_KEY,
)
async def create(
    body: ListenerCreateBody,
    request: Request,
    response: Response,
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> ListenerBody:
    change = await runtime.listeners.create(ctx, body.listener)
    return _accepted(request, response, change, ctx)


@router.get(
    "",
    operation_id="listListeners",
    summary="List listeners",
    response_model=ListenerList,
    responses=LIST_PROBLEMS,
    openapi_extra=list_openapi(Listener),
)
async def list_(
    request: Request,
    query: ListQuery = Depends(list_query_dependency()),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    page, rel = await list_page(runtime.sessions, ctx, Listener, query)
    return list_response(request, query, PATH, page, rel, ctx, listener_out)


@router.get(
    "/{listener_id}",
    operation_id="getListener",
    summary="Show a listener",
    responses=read_responses(NEXT),
)
async def get(
    listener_id: UUID,
    response: Response,
    poll: LongPoll = Depends(long_poll),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> ListenerBody:
    listener = await read_settled(
        runtime, poll, lambda: runtime.listeners.get(ctx, listener_id), lambda x: x.loadbalancer_id
    )
    with_etag(response, listener)
    return ListenerBody(listener=listener_out(listener, Related(), ctx))


@router.put(
    "/{listener_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="updateListener",
    summary="Update a listener (asynchronous)",
    responses=accepted_responses(CHANGE_PROBLEMS, SETTLED),
)
async def update(
    listener_id: UUID,
    body: ListenerUpdateBody,
    request: Request,
    response: Response,
    if_match: str | None = Depends(if_match_header),
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> ListenerBody:
    change = await runtime.listeners.update(ctx, listener_id, body.listener, if_match)
    return _accepted(request, response, change, ctx)


@router.delete(
    "/{listener_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="deleteListener",
    summary="Delete a listener (asynchronous)",
    responses=accepted_responses(CHANGE_PROBLEMS),
)
async def delete(
    listener_id: UUID,
    request: Request,
    response: Response,
    if_match: str | None = Depends(if_match_header),
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> ListenerBody:
    change = await runtime.listeners.delete(ctx, listener_id, if_match)
    return _accepted(request, response, change, ctx)


@router.get(
    "/{listener_id}/stats",
    operation_id="getListenerStats",
    summary="Traffic counters, totalled across the device's reloads and restarts",
    responses=READ_PROBLEMS,
)
async def stats(
    listener_id: UUID,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> StatsBody:
    return stats_body(await runtime.loadbalancers.listener_stats(ctx, listener_id))
