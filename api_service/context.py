"""The HTTP side of who is asking: the token of every ``/v2/lbaas`` request (and of the
Neutron and Keystone paths), checked by :class:`Authentication` before anything reads the
request, as a :class:`~api_service.access.RequestContext`, and the role each route needs.

A token is one of this service's own, or a Keystone token that
``POST /identity/v3/auth/tokens`` gave for one (``services/identity.py``)."""

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from api_service.access import RequestContext
from api_service.errors import DomainError, Forbidden, Unauthenticated
from api_service.problems import (
    ProblemError,
    problem_of,
    problem_response,
    unavailable_response,
    unreachable,
)
from api_service.services.tokens import Role, unauthorized

if TYPE_CHECKING:  # the runtime's background loops need idempotency, which needs this module
    from api_service.runtime import Runtime

log = logging.getLogger(__name__)

NEUTRON_COLLECTIONS = ("networks", "subnets", "ports", "extensions")

AUTHENTICATED_PATHS = (
    "/v2/lbaas/",
    "/v2.0/lbaas/",
    *(f"{version}/{kind}" for version in ("/v2.0", "/v2") for kind in NEUTRON_COLLECTIONS),
    "/identity/v3/auth/",
    "/identity/v3/projects",
    "/identity/v3/users",
)
"""Where every request needs a token (but :data:`CREDENTIAL_EXCHANGES`) and may have a body;
the rest (``/``, ``/v2``, ``/healthz``, ``/readyz``, Keystone's version discovery, the
OpenAPI document and its pages) is open, and takes no body."""
CREDENTIAL_EXCHANGES = frozenset({("POST", "/identity/v3/auth/tokens")})
"""Requests to an authenticated path that carry their credential in the body instead: they
need no token (their body is read within the limits all the same)."""
_CREDENTIAL_HEADERS = {b"x-auth-token": "X-Auth-Token", b"authorization": "Authorization"}
_CALLER = "lbaas.caller"
"""Where :class:`Authentication` leaves the :class:`Caller` in the request's scope."""


@dataclass(frozen=True)
class Caller:
    """Who sent a request, its token checked."""

    context: RequestContext
    token_digest: str
    """The stored digest of its token: whose Idempotency-Keys the request uses."""


def needs_token(scope: Scope) -> bool:
    """Whether a request must carry a token, which :class:`Authentication` checks."""
    return (
        scope["type"] == "http"
        and scope["path"].startswith(AUTHENTICATED_PATHS)
        and (scope["method"], scope["path"]) not in CREDENTIAL_EXCHANGES
    )


def caller_of(scope: Scope) -> Caller | None:
    """The checked caller of a request; None on an open path."""
    caller: Caller | None = scope.get(_CALLER)
    return caller


def credential_of(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The token a request carries in X-Auth-Token or Authorization: Bearer.

    More than one credential header (of either name) is refused with 400: which one
    counts must never depend on who reads the headers. A header that carries nothing
    (blank, or ``Authorization: Bearer`` alone, as some clients send for a scheme they
    have no value of) is no credential.
    """
    given = [
        (name, value)
        for name, value in headers
        if name in _CREDENTIAL_HEADERS and not _carries_nothing(name, value)
    ]
    if len(given) > 1:
        names = ", ".join(_CREDENTIAL_HEADERS[name] for name, _ in given)
        raise ProblemError(
            400,
            "Invalid Request",
            "A request carries one credential, in X-Auth-Token or Authorization: "
            f"this one has {len(given)} ({names}).",
        )
    if given:
        name, raw = given[0]
        value = raw.decode("latin-1")
        if name == b"x-auth-token":
            return value
        scheme, _, bearer = value.partition(" ")
        if scheme.lower() == "bearer" and bearer.strip():
            return bearer.strip()
    raise unauthorized("A token is required (X-Auth-Token or Authorization: Bearer).")


def _carries_nothing(name: bytes, value: bytes) -> bool:
    text = value.decode("latin-1").strip()
    return not text or (name == b"authorization" and text.lower() == "bearer")


class Authentication:
    """Checks the token of every request to :data:`AUTHENTICATED_PATHS` first (but
    :data:`CREDENTIAL_EXCHANGES`).

    Nothing has read the request yet, its body included: a request without a valid
    token costs one token lookup at most. A client address that failed to authenticate
    too often is refused (429) before its token costs even that; then the token's own
    rate limit is charged. The caller is left in the scope for :func:`request_context`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not needs_token(scope):
            await self.app(scope, receive, send)
            return
        try:
            scope[_CALLER] = await self._caller(scope)
        except DomainError as error:
            refused = problem_of(error)
            await problem_response(refused.problem, refused.headers)(scope, receive, send)
            return
        except ProblemError as refused:
            await problem_response(refused.problem, refused.headers)(scope, receive, send)
            return
        except Exception as exc:
            if not unreachable(exc):
                raise
            log.warning("cannot check a token on %s %s: %r", scope["method"], scope["path"], exc)
            await unavailable_response()(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _caller(self, scope: Scope) -> Caller:
        secret = credential_of(scope["headers"])
        client = scope.get("client")
        address = client[0] if client else None
        runtime: Runtime = scope["app"].state.runtime
        runtime.failed_authentications.check(address)
        try:
            token = await runtime.identity.verify(secret)
        except Unauthenticated:
            runtime.failed_authentications.record(address)
            raise
        runtime.rate_limits.charge(token.id)
        context = RequestContext(
            project_id=token.project_id,
            role=Role(token.role),
            token_id=token.id,
            token_name=token.name,
        )
        return Caller(context, token.token_hash)


# Documented as security schemes (either one will do); checked by Authentication, not by them.
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
    _x_auth_token: str | None = Depends(_AUTH_TOKEN),
    _bearer: HTTPAuthorizationCredentials | None = Depends(_BEARER),
) -> RequestContext:
    """Who is asking, as :class:`Authentication` found (the parameters document the headers)."""
    caller = caller_of(request.scope)
    if caller is None:
        raise RuntimeError(
            f"{request.url.path} needs a token but is outside {AUTHENTICATED_PATHS}, "
            "where Authentication checks them"
        )
    return caller.context


async def writer_context(ctx: RequestContext = Depends(request_context)) -> RequestContext:
    if not ctx.may_write:
        raise Forbidden(f"The {ctx.role.value} role may not make changes.")
    return ctx


async def admin_context(ctx: RequestContext = Depends(request_context)) -> RequestContext:
    if not ctx.is_admin:
        raise Forbidden("Only an admin may do this.")
    return ctx


async def global_reader_context(ctx: RequestContext = Depends(request_context)) -> RequestContext:
    if not ctx.reads_all:
        raise Forbidden("Only an admin or a global observer may read this.")
    return ctx
