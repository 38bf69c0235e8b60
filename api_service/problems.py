"""RFC 9457 problem details: every error the API returns has this one shape.

Problems are ``application/problem+json``, but to a client whose ``Accept`` prefers
``application/json`` (openstacksdk, keystoneauth, the ``openstack`` CLI: they read an error's
body only when it is ``application/json``), which get the same body as that.
"""

import json
import logging
from http import HTTPStatus
from typing import Any

import asyncpg
import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_service.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Invalid,
    NoCapacity,
    NotFound,
    StaleVersion,
    Unauthenticated,
)

PROBLEM_JSON = "application/problem+json"
JSON = "application/json"

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str
    message: str


class KeystoneError(BaseModel):
    """An error as Keystone answers it, which keystoneauth (every OpenStack client's
    transport) shows instead of "Unrecognized schema in response body"."""

    code: int
    title: str
    message: str


class Problem(BaseModel):
    """The body of every 4xx and 5xx answer.

    ``faultstring`` (read by python-octaviaclient) and ``error`` (read by keystoneauth) repeat
    ``detail`` for OpenStack clients.
    """

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    faultstring: str | None = None
    error: KeystoneError | None = None

    def model_post_init(self, context: object, /) -> None:
        if self.faultstring is None:
            self.faultstring = self.detail
        if self.error is None:
            self.error = KeystoneError(code=self.status, title=self.title, message=self.detail)


class ProblemError(Exception):
    """A problem answer raised at the HTTP edge (middleware, routers); services raise
    ``errors.DomainError`` instead."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem = Problem(title=title, status=status, detail=detail, errors=errors)
        self.headers = headers


_STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    Invalid: 400,
    Conflict: 409,
    Forbidden: 403,
    Unauthenticated: 401,
    StaleVersion: 412,
    NoCapacity: 503,
}


def problem_of(error: DomainError) -> ProblemError:
    """The problem answer of a domain error (the one place errors meet HTTP)."""
    status = next(code for kind, code in _STATUS.items() if isinstance(error, kind))
    errors = None
    if error.field is not None:
        message = error.message if isinstance(error, Invalid) else error.detail
        errors = [FieldError(field=error.field, message=message)]
    headers = None
    if isinstance(error, Unauthenticated):
        headers = {"WWW-Authenticate": 'Bearer realm="lbaas"'}
    elif isinstance(error, NoCapacity):
        headers = {"Retry-After": str(error.retry_after)}
    return ProblemError(status, error.title, error.detail, errors=errors, headers=headers)


def problem_response(problem: Problem, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=problem.status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def _field_name(location: tuple[int | str, ...]) -> str:
    parts = [str(p) for p in location if p not in ("body",)]
    return ".".join(parts) or "body"


async def _on_problem(_: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, DomainError):
        exc = problem_of(exc)
    assert isinstance(exc, ProblemError)
    return problem_response(exc.problem, exc.headers)


async def _on_validation(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw: list[dict[str, Any]] = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in raw):
        message = next(str(e.get("msg")) for e in raw if e.get("type") == "json_invalid")
        return problem_response(
            Problem(title="Malformed JSON", status=400, detail=f"The body is not JSON: {message}")
        )
    errors = [
        FieldError(field=_field_name(tuple(e.get("loc", ()))), message=str(e.get("msg")))
        for e in raw
    ]
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem_response(
        Problem(title="Invalid Request", status=400, detail=detail, errors=errors)
    )


async def _on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(
        Problem(title=_title(exc.status_code), status=exc.status_code, detail=detail),
        headers or None,
    )


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path.

    Each route serves one method, so the ``Allow`` of Starlette's 405 names the methods of
    the first route of the path only: ask every route about each method instead.
    """
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


UNAVAILABLE: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
)
"""What a request meets when PostgreSQL (or another dependency) cannot be reached."""

_LOST_DATABASE = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.TargetServerAttributeNotMatched,
    asyncpg.exceptions.InterfaceError,
    OSError,
)
"""asyncpg's errors of a lost, refused or read-only server (one shutting down, restarting, or
a standby not promoted yet), which SQLAlchemy wraps as a plain ``DBAPIError``."""


def unreachable(exc: BaseException) -> bool:
    """``exc`` says a dependency cannot be reached now (503), not that the request failed."""
    if isinstance(exc, UNAVAILABLE):
        return True
    if not isinstance(exc, sqlalchemy.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    cause: BaseException | None = exc.orig
    while cause is not None:
        if isinstance(cause, _LOST_DATABASE):
            return True
        cause = cause.__cause__
    return False


def unavailable_response() -> JSONResponse:
    """The answer of a request that met an unreachable dependency: 503, with Retry-After."""
    return problem_response(
        Problem(
            title="Service Unavailable",
            status=503,
            detail="A dependency of the service (the database) cannot be reached; retry later.",
        ),
        {"Retry-After": "5"},
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    if unreachable(exc):
        log.warning("dependency unavailable on %s %s: %r", request.method, request.url.path, exc)
        return unavailable_response()
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        Problem(title="Internal Server Error", status=500, detail="An unexpected error occurred.")
    )


_OPENSTACK = "keystoneauth1/"
"""What every OpenStack client's ``User-Agent`` names (openstacksdk, the CLI, Ansible)."""


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def prefers_json(accept: str, user_agent: str = "") -> bool:
    """Whether an ``Accept`` header ranks ``application/json`` above
    ``application/problem+json`` (each by the most specific range that names it), or as
    high for an OpenStack client (keystoneauth1 in its ``User-Agent``): openstacksdk sends
    no ``Accept`` and reads an error's body only when it is ``application/json``."""
    as_json, as_problem = _quality(accept or "*/*", JSON), _quality(accept or "*/*", PROBLEM_JSON)
    return as_json > as_problem or (as_json == as_problem > 0 and _OPENSTACK in user_agent)


def _quality(accept: str, media_type: str) -> float:
    kind = media_type.split("/")[0]
    ranked: dict[str, float] = {}
    for item in accept.split(","):
        media_range, *parameters = (part.strip() for part in item.split(";"))
        quality = 1.0
        for parameter in parameters:
            name, _, value = parameter.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.setdefault(media_range.lower(), quality)
    for candidate in (media_type, f"{kind}/*", "*/*"):
        if candidate in ranked:
            return ranked[candidate]
    return 0.0


class ProblemEdge:
    """The outer edge of the problem answers (inside ``RequestIds``, so that they carry the
    request's id): an unexpected error becomes the 500 problem here, and a problem answer is
    ``application/json`` to a client that prefers it (``prefers_json``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Request(scope).headers
        as_json = prefers_json(headers.get("accept", ""), headers.get("user-agent", ""))
        started = False

        async def answer(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if as_json:
                    message = {**message, "headers": _problem_as_json(message["headers"])}
            await send(message)

        try:
            await self.app(scope, receive, answer)
        except Exception as exc:
            if started:
                raise
            response = await _on_unexpected(Request(scope), exc)
            await response(scope, receive, answer)


def _problem_as_json(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    problem = PROBLEM_JSON.encode()
    return [
        (name, JSON.encode() if name.lower() == b"content-type" and value == problem else value)
        for name, value in headers
    ]


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(DomainError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    for unavailable in (*UNAVAILABLE, sqlalchemy.exc.DBAPIError):
        app.add_exception_handler(unavailable, _on_unexpected)
    app.add_exception_handler(Exception, _on_unexpected)
    _document_problems(app)


_FASTAPI_VALIDATION = "#/components/schemas/HTTPValidationError"
_NO_SUCH_PATH = {
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    "description": "No such path: a path parameter holds a control character",
}


def _document_problems(app: FastAPI) -> None:
    """Document problem answers as they are sent.

    FastAPI files a response ``model`` under ``application/json``: the problem bodies are
    ``application/problem+json``. It also adds a 422 with its own validation error body to
    every operation with parameters: invalid input is a 400 problem here, and a 422 only
    answers a reused Idempotency-Key. And an operation with path parameters may answer 404
    even when none of its objects can be missing: a value holding a control character
    makes a path that names nothing (``limits.PathLimits``).
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        for path, item in document.get("paths", {}).items():
            for operation in item.values():
                responses = operation.get("responses", {})
                if "{" in path and "404" not in responses:
                    responses = operation["responses"] = dict(
                        sorted({**responses, "404": _NO_SUCH_PATH}.items())
                    )
                fastapi_422 = responses.get("422", {}).get("content", {}).get("application/json")
                if fastapi_422 and fastapi_422.get("schema", {}).get("$ref") == _FASTAPI_VALIDATION:
                    del responses["422"]
                for response in responses.values():
                    content = response.get("content", {})
                    if PROBLEM_JSON in content and "application/json" in content:
                        content[PROBLEM_JSON] = content.pop("application/json")
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}}
_DESCRIPTIONS: dict[int, tuple[str, dict[str, Any]]] = {
    400: ("Malformed or invalid request; the problem names the field", {}),
    401: (
        "No valid token (missing, unknown, expired or revoked)",
        {"WWW-Authenticate": {"description": "The scheme to use", "schema": {"type": "string"}}},
    ),
    403: ("The token's role may not do this, or a quota is exceeded", {}),
    404: ("Not found (or not visible to this project), or an object the body names", {}),
    409: ("Conflict with the state of the object, of one the body names, or of devices", {}),
    412: ("If-Match does not match the object's ETag", {}),
    413: ("Body larger than 1 MiB", {}),
    422: ("Idempotency-Key reused with another request", {}),
    429: ("Rate limit of the token exceeded", _RETRY_AFTER),
    503: ("A dependency is unreachable, or no device of the provider has room", _RETRY_AFTER),
}
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "model": Problem,
        "content": {PROBLEM_JSON: {}},
        "description": description,
        **({"headers": headers} if headers else {}),
    }
    for status, (description, headers) in _DESCRIPTIONS.items()
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses`` of an operation that may answer with these problems."""
    return {status: PROBLEM_RESPONSES[status] for status in sorted(statuses)}
