"""``/lbaas/pools/{pool_id}/members``: members one by one, or the whole list in one operation."""

from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from api_service.access import RequestContext
from api_service.context import request_context, writer_context
from api_service.db.listing import ListQuery
from api_service.db.models import Member
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
from api_service.schemas.members import (
    MemberBody,
    MemberCreateBody,
    MemberList,
    MemberOut,
    MembersBatchBody,
    MemberUpdateBody,
)
from api_service.services.changes import Accepted
from api_service.services.views import Related, list_page

router = APIRouter(prefix="/lbaas/pools/{pool_id}/members", tags=["members"])

_THIS = {
    "path.pool_id": "$response.body#/member/pool_id",
    "path.member_id": "$response.body#/member/id",
}
SETTLED = {
    "GetMember": settled(
        "getMember",
        "Wait until it is ACTIVE.",
        pool_id="$response.body#/member/pool_id",
        member_id="$response.body#/member/id",
    )
}
NEXT: Links = {
    "UpdateMember": link("updateMember", "Change it.", _THIS),
    "DeleteMember": link("deleteMember", "Remove it.", _THIS),
}


def member_out(member: Member, _: Related, ctx: RequestContext) -> MemberOut:
    return MemberOut(
        **common_fields(member),
        pool_id=member.pool_id,
        address=str(member.address),
        protocol_port=member.protocol_port,
        weight=member.weight,
        backup=member.backup,
        monitor_address=str(member.monitor_address) if member.monitor_address else None,
        monitor_port=member.monitor_port,
        subnet_id=member.subnet_id,
    )


def _accepted(
    request: Request, response: Response, change: Accepted, ctx: RequestContext
) -> MemberBody:
    assert isinstance(change.target, Member)
    member = change.target
    accepted(request, response, f"pools/{member.pool_id}/members/{member.id}", change)
    return MemberBody(member=member_out(member, Related(), ctx))


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="createMember",
    summary="Add a member to a pool (asynchronous)",
    responses=accepted_responses(CREATE_PROBLEMS, SETTLED),
    openapi_extra=IDEMPOTENCY_KEY,
)
async def create(
    pool_id: UUID,
    body: MemberCreateBody,
    request: Request,
    response: Response,
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> MemberBody:
    change = await runtime.members.create(ctx, pool_id, body.member)
    return _accepted(request, response, change, ctx)


@router.put(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="replaceMembers",
    summary="Replace the pool's whole member list in one operation (asynchronous)",
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
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    change = await runtime.members.replace_all(ctx, pool_id, body.members)
    accepted(request, response, f"pools/{pool_id}/members", change)
    page, rel = await list_page(
        runtime.sessions, ctx, Member, ListQuery(), scope=Member.pool_id == pool_id
    )
    listed = list_response(request, ListQuery(), "members", page, rel, ctx, member_out)
    listed.status_code = status.HTTP_202_ACCEPTED
    listed.headers.update(response.headers)
    return listed


@router.get(
    "",
    operation_id="listMembers",
    summary="List a pool's members",
    response_model=MemberList,
    responses=LIST_PROBLEMS,
    openapi_extra=list_openapi(Member),
)
async def list_(
    pool_id: UUID,
    request: Request,
    query: ListQuery = Depends(list_query_dependency()),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    await runtime.members.pool(ctx, pool_id)
    page, rel = await list_page(
        runtime.sessions, ctx, Member, query, scope=Member.pool_id == pool_id
    )
    return list_response(request, query, "members", page, rel, ctx, member_out)


@router.get(
    "/{member_id}",
    operation_id="getMember",
    summary="Show a member",
    responses=read_responses(NEXT),
)
async def get(
    pool_id: UUID,
    member_id: UUID,
    response: Response,
    poll: LongPoll = Depends(long_poll),
    ctx: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> MemberBody:
    member = await read_settled(
        runtime,
        poll,
        lambda: runtime.members.get(ctx, pool_id, member_id),
        lambda x: x.loadbalancer_id,
    )
    with_etag(response, member)
    return MemberBody(member=member_out(member, Related(), ctx))


@router.put(
    "/{member_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="updateMember",
    summary="Update a member (asynchronous)",
    responses=accepted_responses(CHANGE_PROBLEMS, SETTLED),
)
async def update(
    pool_id: UUID,
    member_id: UUID,
    body: MemberUpdateBody,
    request: Request,
    response: Response,
    if_match: str | None = Depends(if_match_header),
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> MemberBody:
    change = await runtime.members.update(ctx, pool_id, member_id, body.member, if_match)
    return _accepted(request, response, change, ctx)


@router.delete(
    "/{member_id}",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="deleteMember",
    summary="Remove a member (asynchronous)",
    responses=accepted_responses(CHANGE_PROBLEMS),
)
async def delete(
    pool_id: UUID,
    member_id: UUID,
    request: Request,
    response: Response,
    if_match: str | None = Depends(if_match_header),
    ctx: RequestContext = Depends(writer_context),
    runtime: Runtime = Depends(get_runtime),
) -> MemberBody:
    change = await runtime.members.delete(ctx, pool_id, member_id, if_match)
    return _accepted(request, response, change, ctx)
