"""What listeners have besides the generic routes: their traffic counters."""

from uuid import UUID

from fastapi import APIRouter, Depends

from api_service.access import RequestContext
from api_service.context import request_context
from api_service.routers.http import READ_PROBLEMS, stats_body
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.loadbalancers import StatsBody

router = APIRouter(prefix="/lbaas/listeners", tags=["listeners"])


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
