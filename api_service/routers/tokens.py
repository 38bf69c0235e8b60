"""``/lbaas/tokens`` (admin extension): issue, list and revoke API tokens."""

from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field, Strict

from api_service.access import RequestContext
from api_service.context import admin_context
from api_service.db.models import Token
from api_service.problems import problems
from api_service.routers.http import CHECKED
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.fields import (
    INT32_MAX,
    INTEGRAL,
    ProjectId,
    RequestBody,
    Text255,
    Timestamp,
)
from api_service.services.tokens import Role

router = APIRouter(prefix="/lbaas/tokens", tags=["tokens"])


class TokenCreate(RequestBody):
    name: Text255
    project_id: ProjectId
    role: Role
    expires_in: Annotated[int, Strict(), Field(ge=1, le=INT32_MAX), INTEGRAL] | None = Field(
        default=None, description="Seconds until the token expires; none: never."
    )


class TokenCreateBody(RequestBody):
    token: TokenCreate


class TokenOut(BaseModel):
    id: UUID
    name: str
    project_id: str
    role: str
    created_at: Timestamp
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class IssuedTokenOut(TokenOut):
    token: str = Field(description="The secret. It is shown this once and never stored.")


class IssuedTokenBody(BaseModel):
    token: IssuedTokenOut


class TokenBody(BaseModel):
    token: TokenOut


class TokenList(BaseModel):
    tokens: list[TokenOut]


def token_out(token: Token) -> TokenOut:
    return TokenOut.model_validate(token, from_attributes=True)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="createToken",
    summary="Issue a token (its secret is in this answer only; Idempotency-Key is ignored)",
    responses=problems(*CHECKED, 400, 403, 413),
)
async def create(
    body: TokenCreateBody,
    _: RequestContext = Depends(admin_context),
    runtime: Runtime = Depends(get_runtime),
) -> IssuedTokenBody:
    spec = body.token
    issued = await runtime.tokens.issue(
        name=spec.name,
        project_id=spec.project_id,
        role=spec.role,
        expires_in=timedelta(seconds=spec.expires_in) if spec.expires_in else None,
    )
    shown = token_out(issued.token).model_dump()
    return IssuedTokenBody(token=IssuedTokenOut(**shown, token=issued.value))


@router.get(
    "",
    operation_id="listTokens",
    summary="List tokens (never their secrets)",
    responses=problems(*CHECKED, 403),
)
async def list_(
    _: RequestContext = Depends(admin_context), runtime: Runtime = Depends(get_runtime)
) -> TokenList:
    return TokenList(tokens=[token_out(t) for t in await runtime.tokens.list()])


@router.delete(
    "/{token_id}",
    operation_id="revokeToken",
    summary="Revoke a token at once",
    responses=problems(*CHECKED, 400, 403, 404, 413),
)
async def revoke(
    token_id: UUID,
    _: RequestContext = Depends(admin_context),
    runtime: Runtime = Depends(get_runtime),
) -> TokenBody:
    return TokenBody(token=token_out(await runtime.tokens.revoke(token_id)))
