"""The HTTP side of who is asking: the token of every ``/v2`` request, checked, as a
:class:`~api_service.access.RequestContext`, and the role each route needs."""

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import Scope

from api_service.access import RequestContext
from api_service.errors import Forbidden, Unauthenticated
from api_service.services.tokens import Role, digest, unauthorized


def token_owner(scope: Scope) -> str:
    """Who sent a raw request, for middleware: a digest of its token (not checked here)."""
    headers = {name: value.decode("latin-1") for name, value in scope.get("headers", ())}
    try:
        return digest(token_of(headers.get(b"x-auth-token"), headers.get(b"authorization")))
    except Unauthenticated:
        return "anonymous"


def token_of(x_auth_token: str | None, authorization: str | None) -> str:
    if x_auth_token:
        return x_auth_token
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    raise unauthorized("A token is required (X-Auth-Token or Authorization: Bearer).")


# Documented as security schemes (either one will do); checked by request_context, not by them.
_AUTH_TOKEN = APIKeyHeader(
    name="X-Auth-Token",
    scheme_name="AuthToken",
    description="An API token (OpenStack clients send it in X-Auth-Token).",
    auto_error=False,
)
_BEARER = HTTPBearer(
    scheme_name="Bearer",
    description="The same API token, as Authorization: Bearer <token>.",
    auto_error=False,
)


async def request_context(
    request: Request,
    x_auth_token: str | None = Depends(_AUTH_TOKEN),
    bearer: HTTPAuthorizationCredentials | None = Depends(_BEARER),
) -> RequestContext:
    runtime = request.app.state.runtime
    authorization = f"Bearer {bearer.credentials}" if bearer is not None else None
    token = await runtime.tokens.verify(token_of(x_auth_token, authorization))
    runtime.rate_limits.charge(token.id)
    return RequestContext(
        project_id=token.project_id, role=Role(token.role), token_id=token.id, token_name=token.name
    )


def writer_context(ctx: RequestContext = Depends(request_context)) -> RequestContext:
    if not ctx.may_write:
        raise Forbidden(f"The {ctx.role.value} role may not make changes.")
    return ctx


def admin_context(ctx: RequestContext = Depends(request_context)) -> RequestContext:
    if not ctx.is_admin:
        raise Forbidden("Only an admin may do this.")
    return ctx


def global_reader_context(ctx: RequestContext = Depends(request_context)) -> RequestContext:
    if not ctx.reads_all:
        raise Forbidden("Only an admin or a global observer may read this.")
    return ctx
