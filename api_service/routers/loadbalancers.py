"""What load balancers have besides the generic routes: create (placement, the whole tree in
one call), delete (``cascade``), failover, stats and the status tree."""

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status

from api_service.access import RequestContext
from api_service.context import request_context, writer_context
from api_service.db.listing import parse_bool
from api_service.db.models import L7Rule, Listener
from api_service.errors import Invalid
from api_service.problems import problems
from api_service.resources.loadbalancers import LOADBALANCER
from api_service.routers.http import (
    CHANGE_PROBLEMS,
    CHECKED,
    CREATE_PROBLEMS,
    IDEMPOTENCY_KEY,
    READ_PROBLEMS,
    StatusCodes,
    accepted_responses,
    answered_with,
    change_answer,
    change_codes,
    if_match_header,
    settled,
    stats_body,
)
from api_service.routers.resources import accepted_body
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.loadbalancers import (
    LoadBalancerBody,
    LoadBalancerCreateBody,
    StatsBody,
    StatusTreeBody,
)
from api_service.services.changes import Accepted
from api_service.services.tree import Tree

_PATH = "/lbaas/loadbalancers"
router = APIRouter(prefix=_PATH, tags=["loadbalancers"])
"""Failover, stats and the status tree (``loadbalancer_router`` adds create and delete)."""

SETTLED = {
    "GetLoadBalancer": settled(
        "getLoadBalancer",
        "Wait until it is ACTIVE.",
        loadbalancer_id="$response.body#/loadbalancer/id",
    )
}


async def _answer(
    request: Request, response: Response, change: Accepted, ctx: RequestContext, runtime: Runtime
) -> Any:
    service = runtime.resources[LOADBALANCER.key]
    return await accepted_body(LOADBALANCER, service, request, response, change, ctx)


def loadbalancer_router(codes: StatusCodes) -> APIRouter:
    """Create and delete, answered with ``codes``, and the routes of ``router``."""
    changes = APIRouter(tags=["loadbalancers"])
    changes.add_api_route(
        _PATH,
        create,
        methods=["POST"],
        status_code=codes.create,
        operation_id="createLoadBalancer",
        summary="Create a load balancer, optionally with its whole tree (asynchronous)",
        description=(
            "Placed on the enabled device of the provider with the most room among those "
            "serving vip_subnet_id (or a subnet of vip_network_id, or vip_port_id's subnet), or, "
            "for an admin, on device_id; the VIP is the port's address or the next free one of "
            "the subnet's allocation pools. 503 (with Retry-After) when no device of the "
            "provider has room."
        ),
        response_model=LoadBalancerBody,
        responses=accepted_responses(CREATE_PROBLEMS, SETTLED, codes.create),
        openapi_extra=IDEMPOTENCY_KEY,
    )
    changes.add_api_route(
        f"{_PATH}/{{loadbalancer_id}}",
        delete,
        methods=["DELETE"],
        status_code=codes.delete,
        operation_id="deleteLoadBalancer",
        summary="Delete a load balancer (asynchronous); with cascade=true, its whole tree",
        **answered_with(LoadBalancerBody, codes.delete),
        responses=accepted_responses(CHANGE_PROBLEMS, status=codes.delete),
    )
    changes.include_router(router)
    return changes


async def create(
    body: LoadBalancerCreateBody,
    request: Request,
    response: Response,
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    change = await runtime.loadbalancers.create(ctx, body.loadbalancer)
    return await _answer(request, response, change, ctx, runtime)


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
) -> Any:
    try:
        cascading = parse_bool(cascade)
    except ValueError:
        raise Invalid("cascade", "must be true or false") from None
    change = await runtime.loadbalancers.delete(
        ctx, loadbalancer_id, cascade=cascading, if_match=if_match
    )
    body = await _answer(request, response, change, ctx, runtime)
    return change_answer(change_codes(runtime).delete, response, body)


@router.put(
    "/{loadbalancer_id}/failover",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="failoverLoadBalancer",
    summary="Apply the whole tree again, on another device if its own is disabled",
    response_model=LoadBalancerBody,
    responses=accepted_responses(problems(*CHECKED, 400, 403, 404, 409), SETTLED),
)
async def failover(
    loadbalancer_id: UUID,
    request: Request,
    response: Response,
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> Any:
    change = await runtime.loadbalancers.failover(ctx, loadbalancer_id)
    return await _answer(request, response, change, ctx, runtime)


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


def _status(obj: Any, **extra: object) -> dict[str, object]:
    return {
        "id": str(obj.id),
        "name": obj.name,
        "provisioning_status": obj.provisioning_status,
        "operating_status": obj.operating_status,
        **extra,
    }


def _pools_of(tree: Tree, listener: Listener) -> list[UUID]:
    """The listener's default pool, then the pools its L7 policies redirect to, once each."""
    pools = [listener.default_pool_id] if listener.default_pool_id else []
    for policy in tree.l7policies_of(listener.id):
        if policy.redirect_pool_id is not None and policy.redirect_pool_id not in pools:
            pools.append(policy.redirect_pool_id)
    return pools


def _rule_status(rule: L7Rule) -> dict[str, object]:
    """A rule has no name."""
    return {
        "id": str(rule.id),
        "provisioning_status": rule.provisioning_status,
        "operating_status": rule.operating_status,
        "type": rule.type,
    }


def status_of_tree(tree: Tree) -> dict[str, object]:
    """Octavia's status tree: listeners with their L7 policies and rules, their default pools
    with members and health monitor."""

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
                pools=[
                    status
                    for pool_id in _pools_of(tree, listener)
                    for status in pool_status(pool_id)
                ],
                l7policies=[
                    _status(
                        policy,
                        action=policy.action,
                        rules=[_rule_status(rule) for rule in tree.l7rules_of(policy.id)],
                    )
                    for policy in tree.l7policies_of(listener.id)
                ],
            )
            for listener in tree.listeners
        ],
    )
