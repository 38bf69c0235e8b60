"""``/lbaas/operations`` (extension): follow and audit asynchronous changes.

The list is the audit trail: newest first, keyset-paged with ``limit``, ``marker`` and
``page_reverse`` and answered with ``operations_links``, as every list. Which device and
agent carried a change is for admins and global observers only, what the device itself said
of a failure (``error_detail``) for admins only.
"""

from uuid import UUID

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api_service.access import RequestContext
from api_service.context import request_context
from api_service.db.listing import ListQuery
from api_service.db.models import Operation
from api_service.problems import problems
from api_service.routers.http import CHECKED, LIST_PROBLEMS, list_parameters, page_response
from api_service.routers.listing import list_query_dependency
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.operations import OperationBody, OperationList, OperationOut
from api_service.services.operations import NEWEST_FIRST, OPERATION_FILTERS, OPERATION_SORTS

router = APIRouter(prefix="/lbaas/operations", tags=["operations"])


def operation_out(operation: Operation, ctx: RequestContext) -> OperationOut:
    """The operation as ``ctx`` may see it: placement for global readers, device words for
    admins."""
    shown = OperationOut.model_validate(operation, from_attributes=True)
    hidden: dict[str, None] = {}
    if not ctx.reads_all:
        hidden.update(device_id=None, agent_id=None)
    if not ctx.is_admin:
        hidden.update(error_detail=None)
    return shown.model_copy(update=hidden)


@router.get(
    "",
    operation_id="listOperations",
    summary="List operations, newest first",
    response_model=OperationList,
    responses=LIST_PROBLEMS,
    openapi_extra=list_parameters(
        OPERATION_FILTERS, OPERATION_SORTS, tag_filters=False, default_sort=NEWEST_FIRST
    ),
)
async def list_(
    request: Request,
    query: ListQuery = Depends(list_query_dependency(default_sort=NEWEST_FIRST)),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    page = await runtime.operations.page(ctx, query)
    bodies = [operation_out(operation, ctx) for operation in page.items]
    return page_response(request, query, "operations", page, bodies)


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
    operation = await runtime.operations.get(ctx, operation_id)
    return OperationBody(operation=operation_out(operation, ctx))
