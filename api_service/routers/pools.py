"""``/lbaas/pools``: Octavia v2 paths and bodies; writes answer 202."""

from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from api_service.access import RequestContext
from api_service.context import request_context, writer_context
from api_service.db.listing import ListQuery
from api_service.db.models import Pool
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
from api_service.schemas.pools import (
    PoolBody,
    PoolCreateBody,
    PoolList,
    PoolOut,
    PoolUpdateBody,
    SessionPersistenceOut,
)
from api_service.services.changes import Accepted
from api_service.services.views import Related, list_page, related

router = APIRouter(prefix="/lbaas/pools", tags=["pools"])
PATH = "pools"

_ID = "$response.body#/pool/id"
_THIS = {"path.pool_id": _ID}
SETTLED = {"GetPool": settled("getPool", "Wait until it is ACTIVE.", pool_id=_ID)}
NEXT: Links = {
    "CreateMember": link("createMember", "Add a member.", _THIS),
    "ReplaceMembers": link("replaceMembers", "Replace its members.", _THIS),
    "ListMembers": link("listMembers", "List its members.", _THIS),
    "CreateHealthMonitor": link(
        "createHealthMonitor", "Monitor its members.", body={"healthmonitor": {"pool_id": _ID}}
    ),
    "UpdatePool": link("updatePool", "Change it.", _THIS),
    "DeletePool": link("deletePool", "Delete it.", _THIS),
}


def pool_out(pool: Pool, rel: Related, ctx: RequestContext) -> PoolOut:
    monitors = rel.of("healthmonitor")
    return PoolOut(
        **common_fields(pool),
        protocol=pool.protocol,
        lb_algorithm=pool.lb_algorithm,
        session_persistence=(
            SessionPersistenceOut.model_validate(pool.session_persistence)
            if pool.session_persistence
            else None
        ),
        listeners=[IdRef(id=i) for i in rel.of("listeners")],
        loadbalancers=[IdRef(id=pool.loadbalancer_id)],
        members=[IdRef(id=i) for i in rel.of("members")],
        healthmonitor_id=monitors[0] if monitors else None,
    )


async def _related(runtime: Runtime, pool: Pool) -> Related:
    async with runtime.sessions() as session:
        (rel,) = await related(session, [pool])
    return rel


async def _accepted(
    request: Request, response: Response, change: Accepted, ctx: RequestContext, runtime: Runtime
) -> PoolBody:
    accepted(request, response, f"{PATH}/{change.target.id}", change)
    assert isinstance(change.target, Pool)
    return PoolBody(pool=pool_out(change.target, await _related(runtime, change.target), ctx))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="createPool",
    summary="Create a pool (asynchronous)",
    responses=accepted_responses(CREATE_PROBLEMS, SETTLED),
    openapi_extra=IDEMPOTENCY_KEY,
)
async def create(
    body: PoolCreateBody,
    request: Request,
    response: Response,
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> PoolBody:
    change = await runtime.pools.create(ctx, body.pool)
    return await _accepted(request, response, change, ctx, runtime)


@router.get(
    "",
    operation_id="listPools",
    summary="List pools",
    response_model=PoolList,
    responses=LIST_PROBLEMS,
    openapi_extra=list_openapi(Pool),
)
async def list_(
    request: Request,
    query: ListQuery = Depends(list_query_dependency()),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    page, rel = await list_page(runtime.sessions, ctx, Pool, query)
    return list_response(request, query, PATH, page, rel, ctx, pool_out)


@router.get(
    "/{pool_id}",
    operation_id="getPool",
    summary="Show a pool",
    responses=read_responses(NEXT),
)
async def get(
    pool_id: UUID,
    response: Response,
    poll: LongPoll = Depends(long_poll),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> PoolBody:
    pool = await read_settled(
        runtime, poll, lambda: runtime.pools.get(ctx, pool_id), lambda x: x.loadbalancer_id
    )
    with_etag(response, pool)
    return PoolBody(pool=pool_out(pool, await _related(runtime, pool), ctx))


@router.put(
    "/{pool_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="updatePool",
    summary="Update a pool (asynchronous)",
    responses=accepted_responses(CHANGE_PROBLEMS, SETTLED),
)
async def update(
    pool_id: UUID,
    body: PoolUpdateBody,
    request: Request,
    response: Response,
    if_match: str | None = Depends(if_match_header),
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> PoolBody:
    change = await runtime.pools.update(ctx, pool_id, body.pool, if_match)
    return await _accepted(request, response, change, ctx, runtime)


@router.delete(
    "/{pool_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="deletePool",
    summary="Delete a pool (asynchronous)",
    responses=accepted_responses(CHANGE_PROBLEMS),
)
async def delete(
    pool_id: UUID,
    request: Request,
    response: Response,
    if_match: str | None = Depends(if_match_header),
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> PoolBody:
    change = await runtime.pools.delete(ctx, pool_id, if_match)
    return await _accepted(request, response, change, ctx, runtime)
