"""``/lbaas/loadbalancers``: Octavia v2 paths and bodies; writes answer 202."""

from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status

from api_service.context import RequestContext, request_context
from api_service.db.models import LoadBalancer
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.loadbalancers import (
    LoadBalancerBody,
    LoadBalancerCreateBody,
    LoadBalancerList,
    LoadBalancerOut,
    LoadBalancerUpdateBody,
)
from api_service.services.loadbalancers import Accepted

router = APIRouter(prefix="/lbaas/loadbalancers", tags=["loadbalancers"])


def loadbalancer_out(lb: LoadBalancer, ctx: RequestContext) -> LoadBalancerOut:
    return LoadBalancerOut(
        id=lb.id,
        project_id=lb.project_id,
        tenant_id=lb.project_id,
        name=lb.name,
        description=lb.description,
        admin_state_up=lb.admin_state_up,
        provisioning_status=lb.provisioning_status,
        operating_status=lb.operating_status,
        status_reason=lb.status_reason,
        provider=lb.provider,
        vip_address=str(lb.vip_address),
        tags=list(lb.tags),
        device_id=lb.device_id if ctx.is_admin else None,
        generation=lb.generation,
        created_at=lb.created_at,
        updated_at=lb.updated_at,
    )


def _accepted(
    request: Request, response: Response, accepted: Accepted, ctx: RequestContext
) -> LoadBalancerBody:
    lb = accepted.loadbalancer
    response.headers["Location"] = f"{request.base_url}v2/lbaas/loadbalancers/{lb.id}"
    response.headers["Retry-After"] = "1"
    response.headers["X-Operation-Id"] = str(accepted.change.operation.id)
    return LoadBalancerBody(loadbalancer=loadbalancer_out(lb, ctx))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="createLoadBalancer",
    summary="Create a load balancer (asynchronous)",
)
async def create(
    body: LoadBalancerCreateBody,
    request: Request,
    response: Response,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> LoadBalancerBody:
    accepted = await runtime.loadbalancers.create(ctx, body.loadbalancer)
    return _accepted(request, response, accepted, ctx)


@router.get("", operation_id="listLoadBalancers", summary="List load balancers")
async def list_(
    limit: int = Query(default=1000, ge=1, le=1000),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> LoadBalancerList:
    lbs = await runtime.loadbalancers.list(ctx, limit)
    return LoadBalancerList(loadbalancers=[loadbalancer_out(lb, ctx) for lb in lbs])


@router.get("/{loadbalancer_id}", operation_id="getLoadBalancer", summary="Show a load balancer")
async def get(
    loadbalancer_id: UUID,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> LoadBalancerBody:
    lb = await runtime.loadbalancers.get(ctx, loadbalancer_id)
    return LoadBalancerBody(loadbalancer=loadbalancer_out(lb, ctx))


@router.put(
    "/{loadbalancer_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="updateLoadBalancer",
    summary="Update a load balancer (asynchronous)",
)
async def update(
    loadbalancer_id: UUID,
    body: LoadBalancerUpdateBody,
    request: Request,
    response: Response,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> LoadBalancerBody:
    accepted = await runtime.loadbalancers.update(ctx, loadbalancer_id, body.loadbalancer)
    return _accepted(request, response, accepted, ctx)


@router.delete(
    "/{loadbalancer_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="deleteLoadBalancer",
    summary="Delete a load balancer (asynchronous); allowed from ACTIVE and ERROR",
)
async def delete(
    loadbalancer_id: UUID,
    request: Request,
    response: Response,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> LoadBalancerBody:
    accepted = await runtime.loadbalancers.delete(ctx, loadbalancer_id)
    return _accepted(request, response, accepted, ctx)
