"""``/lbaas/loadbalancers``: Octavia v2 paths and bodies; writes answer 202."""

from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

from api_service.access import RequestContext
from api_service.context import request_context, writer_context
from api_service.db.listing import ListQuery, parse_bool
from api_service.db.models import LoadBalancer, TreeObject
from api_service.errors import Invalid
from api_service.problems import problems
from api_service.routers.http import (
    CHANGE_PROBLEMS,
    CHECKED,
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
from api_service.schemas.loadbalancers import (
    LoadBalancerBody,
    LoadBalancerCreateBody,
    LoadBalancerList,
    LoadBalancerOut,
    LoadBalancerUpdateBody,
    StatsBody,
    StatusTreeBody,
)
from api_service.services.changes import Accepted
from api_service.services.tree import Tree
from api_service.services.views import Related, list_page, related

router = APIRouter(prefix="/lbaas/loadbalancers", tags=["loadbalancers"])
PATH = "loadbalancers"

_ID = "$response.body#/loadbalancer/id"
_THIS = {"path.loadbalancer_id": _ID}
SETTLED = {
    "GetLoadBalancer": settled("getLoadBalancer", "Wait until it is ACTIVE.", loadbalancer_id=_ID)
}
NEXT: Links = {
    "CreateListener": link(
        "createListener", "Add a listener.", body={"listener": {"loadbalancer_id": _ID}}
    ),
    "CreatePool": link("createPool", "Add a pool.", body={"pool": {"loadbalancer_id": _ID}}),
    "UpdateLoadBalancer": link("updateLoadBalancer", "Change it.", _THIS),
    "DeleteLoadBalancer": link("deleteLoadBalancer", "Delete it.", _THIS),
    "FailoverLoadBalancer": link("failoverLoadBalancer", "Apply it again.", _THIS),
    "GetLoadBalancerStats": link("getLoadBalancerStats", "Its traffic counters.", _THIS),
    "GetLoadBalancerStatusTree": link("getLoadBalancerStatusTree", "Its status tree.", _THIS),
    "ListOperations": link("listOperations", "Its operations.", {"query.loadbalancer_id": _ID}),
}


def loadbalancer_out(lb: LoadBalancer, rel: Related, ctx: RequestContext) -> LoadBalancerOut:
    return LoadBalancerOut(
        **common_fields(lb),
        provider=lb.provider,
        vip_address=str(lb.vip_address),
        vip_subnet_id=lb.vip_subnet_id,
        vip_network_id=lb.vip_network_id,
        listeners=[IdRef(id=i) for i in rel.of("listeners")],
        pools=[IdRef(id=i) for i in rel.of("pools")],
        device_id=lb.device_id if ctx.is_admin else None,
        generation=lb.generation,
    )


def _tree_related(tree: Tree) -> Related:
    return Related(
        {"listeners": [x.id for x in tree.listeners], "pools": [x.id for x in tree.pools]}
    )


async def _accepted(
    request: Request, response: Response, change: Accepted, ctx: RequestContext, runtime: Runtime
) -> LoadBalancerBody:
    accepted(request, response, f"{PATH}/{change.loadbalancer.id}", change)
    async with runtime.sessions() as session:
        (rel,) = await related(session, [change.loadbalancer])
    return LoadBalancerBody(loadbalancer=loadbalancer_out(change.loadbalancer, rel, ctx))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="createLoadBalancer",
    summary="Create a load balancer, optionally with its whole tree (asynchronous)",
    description=(
        "Placed on the enabled device of the provider with the most room (or, for an admin, "
        "on device_id); 503 (with Retry-After) when no device of the provider has room."
    ),
    responses=accepted_responses(CREATE_PROBLEMS, SETTLED),
    openapi_extra=IDEMPOTENCY_KEY,
)
async def create(
    body: LoadBalancerCreateBody,
    request: Request,
    response: Response,
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> LoadBalancerBody:
    change = await runtime.loadbalancers.create(ctx, body.loadbalancer)
    return await _accepted(request, response, change, ctx, runtime)


@router.get(
    "",
    operation_id="listLoadBalancers",
    summary="List load balancers",
    response_model=LoadBalancerList,
    responses=LIST_PROBLEMS,
    openapi_extra=list_openapi(LoadBalancer),
)
async def list_(
    request: Request,
    query: ListQuery = Depends(list_query_dependency()),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    page, rel = await list_page(runtime.sessions, ctx, LoadBalancer, query)
    return list_response(request, query, PATH, page, rel, ctx, loadbalancer_out)


@router.get(
    "/{loadbalancer_id}",
    operation_id="getLoadBalancer",
    summary="Show a load balancer",
    responses=read_responses(NEXT),
)
async def get(
    loadbalancer_id: UUID,
    response: Response,
    poll: LongPoll = Depends(long_poll),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> LoadBalancerBody:
    await read_settled(
        runtime, poll, lambda: runtime.loadbalancers.get(ctx, loadbalancer_id), lambda lb: lb.id
    )
    tree = await runtime.loadbalancers.tree(ctx, loadbalancer_id)
    with_etag(response, tree.lb)
    return LoadBalancerBody(loadbalancer=loadbalancer_out(tree.lb, _tree_related(tree), ctx))


@router.put(
    "/{loadbalancer_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="updateLoadBalancer",
    summary="Update a load balancer (asynchronous)",
    responses=accepted_responses(CHANGE_PROBLEMS, SETTLED),
)
async def update(
    loadbalancer_id: UUID,
    body: LoadBalancerUpdateBody,
    request: Request,
    response: Response,
    if_match: str | None = Depends(if_match_header),
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> LoadBalancerBody:
    change = await runtime.loadbalancers.update(ctx, loadbalancer_id, body.loadbalancer, if_match)
    return await _accepted(request, response, change, ctx, runtime)


@router.delete(
    "/{loadbalancer_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="deleteLoadBalancer",
    summary="Delete a load balancer (asynchronous); with cascade=true, its whole tree",
    responses=accepted_responses(CHANGE_PROBLEMS),
)
async def delete(
    loadbalancer_id: UUID,
    request: Request,
    response: Response,
    cascade: str = Query(
        default="false",
        description="true to delete the whole tree (true or false, in any case)",
        json_schema_extra={"type": "boolean", "default": False},
    ),
    if_match: str | None = Depends(if_match_header),
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> LoadBalancerBody:
    try:
        cascading = parse_bool(cascade)
    except ValueError:
        raise Invalid("cascade", "must be true or false") from None
    change = await runtime.loadbalancers.delete(
        ctx, loadbalancer_id, cascade=cascading, if_match=if_match
    )
    return await _accepted(request, response, change, ctx, runtime)


@router.put(
    "/{loadbalancer_id}/failover",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="failoverLoadBalancer",
    summary="Apply the whole tree again, on another device if its own is disabled",
    responses=accepted_responses(problems(*CHECKED, 400, 403, 404, 409), SETTLED),
)
async def failover(
    loadbalancer_id: UUID,
    request: Request,
    response: Response,
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> LoadBalancerBody:
    change = await runtime.loadbalancers.failover(ctx, loadbalancer_id)
    return await _accepted(request, response, change, ctx, runtime)


@router.get(
    "/{loadbalancer_id}/stats",
    operation_id="getLoadBalancerStats",
    summary="Traffic counters, totalled across the device's reloads and restarts",
    responses=READ_PROBLEMS,
)
async def stats(
    loadbalancer_id: UUID,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> StatsBody:
    return stats_body(await runtime.loadbalancers.stats(ctx, loadbalancer_id))


@router.get(
    "/{loadbalancer_id}/status",
    operation_id="getLoadBalancerStatusTree",
    summary="Provisioning and operating status of the whole tree",
    response_model=StatusTreeBody,
    response_model_exclude_none=True,
    responses=READ_PROBLEMS,
)
async def status_tree(
    loadbalancer_id: UUID,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> dict[str, object]:
    tree = await runtime.loadbalancers.tree(ctx, loadbalancer_id)
    return {"statuses": {"loadbalancer": status_of_tree(tree)}}


def _status(obj: TreeObject, **extra: object) -> dict[str, object]:
    return {
        "id": str(obj.id),
        "name": obj.name,
        "provisioning_status": obj.provisioning_status,
        "operating_status": obj.operating_status,
        **extra,
    }


def status_of_tree(tree: Tree) -> dict[str, object]:
    """Octavia's status tree: listeners, their default pools, members and health monitor."""

    def pool_status(pool_id: UUID) -> list[dict[str, object]]:
        pool = tree.pool(pool_id)
        if pool is None:
            return []
        monitor = tree.healthmonitor_of(pool.id)
        extra: dict[str, object] = {
            "members": [
                _status(m, address=str(m.address), protocol_port=m.protocol_port)
                for m in tree.members_of(pool.id)
            ]
        }
        if monitor is not None:
            extra["health_monitor"] = _status(monitor, type=monitor.type)
        return [_status(pool, **extra)]

    return _status(
        tree.lb,
        listeners=[
            _status(
                listener,
                pools=pool_status(listener.default_pool_id) if listener.default_pool_id else [],
            )
            for listener in tree.listeners
        ],
    )
