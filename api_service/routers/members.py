"""What members have besides the generic routes: ``PUT`` of a pool's whole member list."""

from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse

from api_service.access import RequestContext
from api_service.context import writer_context
from api_service.db.listing import ListQuery, parse_bool
from api_service.errors import Invalid
from api_service.resources.members import MEMBER, replace_members
from api_service.routers.http import (
    CHANGE_PROBLEMS,
    accepted,
    accepted_responses,
    list_response,
)
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.links import link
from api_service.schemas.members import MemberList, MembersBatchBody

router = APIRouter(prefix="/lbaas/pools/{pool_id}/members", tags=["members"])


@router.put(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="replaceMembers",
    summary="Replace the pool's whole member list in one operation (asynchronous)",
    description=(
        "Members are matched on address and port: listed ones are created or updated, the "
        "others deleted (with additive_only=true, kept)."
    ),
    responses=accepted_responses(
        CHANGE_PROBLEMS,
        {
            "ListMembers": link(
                "listMembers", "List the members.", {"path.pool_id": "$request.path.pool_id"}
            )
        },
    ),
    response_model=MemberList,
)
async def replace_all(
    pool_id: UUID,
    body: MembersBatchBody,
    request: Request,
    response: Response,
    additive_only: str = Query(
        default="false",
        description="true to keep the members the list leaves out (true or false, in any case)",
        json_schema_extra={"type": "boolean", "default": False},
    ),
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    try:
        additive = parse_bool(additive_only)
    except ValueError:
        raise Invalid("additive_only", "must be true or false") from None
    members = runtime.resources[MEMBER.key]
    change = await replace_members(members, ctx, pool_id, body.members, additive_only=additive)
    accepted(request, response, f"pools/{pool_id}/members", change)
    page, rel = await members.page(ctx, ListQuery(), pool_id)
    listed = list_response(request, ListQuery(), "members", page, rel, ctx, MEMBER.out)
    listed.status_code = status.HTTP_202_ACCEPTED
    listed.headers.update(response.headers)
    return listed
