"""``/lbaas/operations`` (extension): follow and audit asynchronous changes."""

from uuid import UUID

from fastapi import APIRouter, Depends, Query

from api_service.access import RequestContext
from api_service.context import request_context
from api_service.db.models import Operation
from api_service.problems import problems
from api_service.routers.http import CHECKED
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.fields import not_null
from api_service.schemas.operations import OperationBody, OperationList, OperationOut

router = APIRouter(prefix="/lbaas/operations", tags=["operations"])


def operation_out(operation: Operation) -> OperationOut:
    return OperationOut.model_validate(operation, from_attributes=True)


@router.get(
    "",
    operation_id="listOperations",
    summary="List operations, oldest first",
    responses=problems(*CHECKED, 400),
)
async def list_(
    loadbalancer_id: UUID | None = Query(
        default=None, description="Those of this load balancer only.", json_schema_extra=not_null
    ),
    limit: int = Query(default=1000, ge=1, le=1000, description="At most this many."),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> OperationList:
    operations = await runtime.operations.list(ctx, loadbalancer_id, limit)
    return OperationList(operations=[operation_out(op) for op in operations])


@router.get(
    "/{operation_id}",
    operation_id="getOperation",
    summary="Show an operation",
    responses=problems(*CHECKED, 400, 404),
)
async def get(
    operation_id: UUID,
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> OperationBody:
    return OperationBody(operation=operation_out(await runtime.operations.get(ctx, operation_id)))
