"""RFC 9457 problem details: every error the API returns has this one shape."""

import json
import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_JSON = "application/problem+json"

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """The body of every 4xx and 5xx answer.

    ``faultstring`` repeats ``detail`` for OpenStack clients, which read that name.
    """

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None
    faultstring: str | None = None

    def model_post_init(self, context: object, /) -> None:
        if self.faultstring is None:
            self.faultstring = self.detail


class ProblemError(Exception):
    """Raised by services and routers; becomes a problem response."""

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


def not_found(kind: str, object_id: object) -> ProblemError:
    return ProblemError(404, "Not Found", f"{kind} {object_id} not found.")


def conflict(detail: str) -> ProblemError:
    return ProblemError(409, "Conflict", detail)


def invalid(field: str, message: str, status: int = 400) -> ProblemError:
    return ProblemError(
        status,
        "Invalid Request",
        f"{field}: {message}",
        errors=[FieldError(field=field, message=message)],
    )


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


async def _on_http(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
    return problem_response(
        Problem(title=_title(exc.status_code), status=exc.status_code, detail=detail),
        dict(exc.headers) if exc.headers else None,
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(
        Problem(title="Internal Server Error", status=500, detail="An unexpected error occurred.")
    )


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ProblemError, _on_problem)
    app.add_exception_handler(RequestValidationError, _on_validation)
    app.add_exception_handler(StarletteHTTPException, _on_http)
    app.add_exception_handler(Exception, _on_unexpected)


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": description}
    for status, description in {
        400: "Malformed or invalid request; the problem names the field",
        404: "Not found",
        409: "Conflict with the object's state",
        503: "Service unavailable",
    }.items()
}
