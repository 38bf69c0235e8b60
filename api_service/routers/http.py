"""What every resource router does the same way: 202 headers, ETags, list bodies, long polls,
absolute links, and how the OpenAPI document describes them (responses, headers, list
parameters)."""

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from fastapi import Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api_service.access import RequestContext
from api_service.context import request_context
from api_service.db.listing import (
    DEFAULT_SORT,
    INT32,
    Filter,
    ListQuery,
    Page,
    parse_address,
    parse_bool,
    parse_int,
    parse_network,
    parse_timestamp,
)
from api_service.db.models import StatsRow, TreeObject
from api_service.idempotency import KEY_PATTERN
from api_service.problems import PROBLEM_RESPONSES, ProblemError, problems
from api_service.routers.listing import page_links, select_fields
from api_service.runtime import Runtime, runtime_of
from api_service.schemas.fields import IP_FORMATS, TIMESTAMP_SCHEMA, not_null
from api_service.schemas.links import Links, link
from api_service.schemas.loadbalancers import StatsBody, StatsOut
from api_service.services.changes import Accepted, etag
from api_service.services.resource import COMMON_FILTERS, COMMON_SORTS, Filters, Related
from api_service.services.waiting import Settling, TooManyWaits, is_done, wait_settled
from shared.status import ProvisioningStatus

T = TypeVar("T", bound=Settling)

Out = Callable[[Any, Related, RequestContext], BaseModel]

# Problems by kind of operation. Every operation checks a token (401), charges its rate
# limit (429) and reads PostgreSQL (503 when it is unreachable).
CHECKED = (401, 429, 503)
READ_PROBLEMS = problems(*CHECKED, 400, 404)
"""GET of one object: a malformed id or parameter (400), an unknown or invisible one (404)."""
LONG_POLL_PROBLEMS = {
    **READ_PROBLEMS,
    429: {
        **PROBLEM_RESPONSES[429],
        "description": "Rate limit of the token exceeded, or the token already holds as "
        "many long polls (wait_for) as it may at once",
    },
}
"""GET of one object that may wait for it to settle: as a read, and the cap of long polls."""
LIST_PROBLEMS = problems(*CHECKED, 400, 404)
"""A list: a malformed parameter (400), a ``marker`` that names no listed object (404)."""
CREATE_PROBLEMS = problems(*CHECKED, 400, 403, 404, 409, 413, 422)
"""A POST: invalid body (400, 413), role or quota (403), a named object missing (404), a
conflict or an Idempotency-Key still in use (409), or reused with another body (422)."""
CHANGE_PROBLEMS = problems(*CHECKED, 400, 403, 404, 409, 412, 413)
"""A PUT or DELETE of an object: as a POST, and a stale If-Match (412)."""

_STRING = {"type": "string"}
ETAG_HEADER = {
    "ETag": {
        "description": "The object's version, for If-Match",
        "required": True,
        "schema": _STRING,
    }
}
ACCEPTED_HEADERS = {
    "Location": {
        "description": "Where to poll the object",
        "required": True,
        "schema": {"type": "string", "format": "uri"},
    },
    "Retry-After": {
        "description": "Seconds before polling",
        "required": True,
        "schema": {"type": "integer"},
    },
    "X-Operation-Id": {
        "description": "The operation that carries the change (/v2/lbaas/operations/{id})",
        "required": True,
        "schema": {"type": "string", "format": "uuid"},
    },
    **ETAG_HEADER,
}


OPERATION_LINK = {
    "GetOperation": link(
        "getOperation",
        "Follow the operation that carries the change.",
        {"path.operation_id": "$response.header.X-Operation-Id"},
    )
}


def read_responses(links: Links | None = None) -> dict[int | str, dict[str, Any]]:
    """A GET of one object (a long poll with ``wait_for``): with its ETag, and what to do with
    the object next."""
    return {
        200: {"headers": ETAG_HEADER, **({"links": links} if links else {})},
        **LONG_POLL_PROBLEMS,
    }


@dataclass(frozen=True)
class StatusCodes:
    """What a create, an update and a delete of a tree object answer (``LBAAS_STATUS_CODES``):
    the change is stored and on its way to the device either way."""

    create: int
    update: int
    delete: int
    summary: str
    """As the OpenAPI document's description says it."""


ASYNC_CODES = StatusCodes(202, 202, 202, "202 Accepted")
OCTAVIA_CODES = StatusCodes(
    201, 200, 204, "as Octavia: 201 Created, 200 OK, or 204 No Content (no body) on delete"
)
STATUS_CODES = {"async": ASYNC_CODES, "octavia": OCTAVIA_CODES}
"""By ``LBAAS_STATUS_CODES``."""


def change_codes(runtime: Runtime) -> StatusCodes:
    """The status codes changes answer with, as the service was started."""
    return STATUS_CODES[runtime.settings.status_codes]


_CHANGE_ANSWERS = {
    202: "Accepted: the object is PENDING_* until the agent has applied it",
    201: "Created: the object is PENDING_CREATE until the agent has applied it",
    200: "Updated: the object is PENDING_UPDATE until the agent has applied it",
    204: "Deleting: the object is PENDING_DELETE until the agent has removed it (no body)",
}


def accepted_responses(
    problem_responses: dict[int | str, dict[str, Any]],
    links: Links | None = None,
    status: int = 202,
) -> dict[int | str, Any]:
    """A change's answer (202 but in Octavia's status codes): the change is stored and on its
    way to the device; poll the object."""
    answer: dict[str, Any] = {
        "description": _CHANGE_ANSWERS[status],
        "headers": ACCEPTED_HEADERS,
        "links": {**OPERATION_LINK, **(links or {})},
    }
    if status == 204:
        answer["content"] = None
    return {status: answer, **problem_responses}


def answered_with(body: type[BaseModel], code: int) -> dict[str, Any]:
    """The ``response_model`` (and class) of a change answered with ``code``: a 204 has no
    body."""
    if code == 204:
        return {"response_model": None, "response_class": Response}
    return {"response_model": body}


def change_answer(code: int, response: Response, body: Any) -> Any:
    """What a change answered with ``code`` sends: ``body``, or for a 204 no body, only the
    headers set on ``response`` (FastAPI's, for the endpoint)."""
    if code == 204:
        return Response(status_code=204, headers=dict(response.headers))
    return body


def settled(operation_id: str, description: str, **path: str) -> dict[str, Any]:
    """A link to GET an object once its tree has settled (a long poll for ACTIVE)."""
    return link(
        operation_id,
        description,
        {**{f"path.{name}": value for name, value in path.items()}, "query.wait_for": "ACTIVE"},
    )


IDEMPOTENCY_KEY = {
    "parameters": [
        {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": (
                "The same key and body within 24 h get the first answer again (with "
                "Idempotent-Replayed: true); the same key with another body is 422."
            ),
            "schema": {"type": "string", "pattern": "^" + KEY_PATTERN + "$"},
        }
    ]
}
"""``openapi_extra`` of every POST: the idempotency middleware reads this header."""

_NO_NUL = {"type": "string", "pattern": "^[^\\u0000]*$"}
_FILTER_SCHEMAS: dict[Callable[[str], object], dict[str, Any]] = {
    str: _NO_NUL,
    UUID: {"type": "string", "format": "uuid"},
    parse_bool: {"type": "boolean"},
    parse_int: {"type": "integer", "minimum": INT32[0], "maximum": INT32[1]},
    parse_address: {"type": "string", **IP_FORMATS},
    parse_network: {"type": "string", "format": "cidr"},
    parse_timestamp: TIMESTAMP_SCHEMA,
}
_DIRECTION = "(?::(?:[Aa][Ss][Cc]|[Dd][Ee][Ss][Cc]))?"
_TAG_FILTERS = (
    ("tags", "Objects with all of these tags (comma-separated)."),
    ("tags-any", "Objects with any of these tags (comma-separated)."),
    ("not-tags", "Objects without all of these tags (comma-separated)."),
    ("not-tags-any", "Objects with none of these tags (comma-separated)."),
)


def _query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
        **extra,
    }


def list_openapi(filters: Filters, sorts: frozenset[str]) -> dict[str, Any]:
    """``openapi_extra`` of a tree resource's list: the filters and sort keys every resource
    has, its own, and the tag filters."""
    return list_parameters({**COMMON_FILTERS, **filters}, COMMON_SORTS | sorts, tag_filters=True)


def list_parameters(
    filters: Filters,
    sorts: frozenset[str],
    *,
    tag_filters: bool,
    default_sort: Sequence[tuple[str, bool]] = DEFAULT_SORT,
) -> dict[str, Any]:
    """``openapi_extra`` of a list: Octavia's query parameters, which a dependency reads raw;
    ``filters`` and ``sorts`` are all the list has, ``default_sort`` its order without one."""
    sortable = sorted(sorts)
    key = "(?:" + "|".join(re.escape(name) for name in sortable) + ")"
    example = "name:asc,created_at:desc" if "name" in sorts else "created_at:asc"
    default = ",".join(f"{name}:{'asc' if up else 'desc'}" for name, up in default_sort)
    parameters = [
        _query(
            "limit",
            {"type": "integer", "minimum": 1},
            "Page size; at most 1000 (a larger limit is capped). Follow the `next` link.",
        ),
        _query(
            "marker",
            {"type": "string", "format": "uuid"},
            "Start after this object (the id in a `next` link); 404 if no such object is listed.",
        ),
        _query("page_reverse", {"type": "boolean"}, "The page before the marker instead."),
        _query(
            "sort",
            {"type": "string", "pattern": f"^{key}{_DIRECTION}(?:,{key}{_DIRECTION})*$"},
            f"Sort keys with directions, such as {example} (the legacy sort_key/sort_dir pair "
            f"is also read); {default} without one. Ties are broken by created_at and id.",
        ),
        _query(
            "fields",
            {"type": "array", "items": _NO_NUL},
            "Only these fields of each object (repeated or comma-separated; unknown ones ignored).",
            style="form",
            explode=True,
        ),
        *(_query(name, _NO_NUL, description) for name, description in _TAG_FILTERS if tag_filters),
        *(_filter_parameter(name, spec) for name, spec in filters.items()),
    ]
    return {"parameters": parameters}


def _filter_parameter(name: str, spec: Callable[[str], object] | Filter) -> dict[str, Any]:
    if isinstance(spec, Filter):
        return _query(name, _FILTER_SCHEMAS[spec.parse], spec.description)
    return _query(name, _FILTER_SCHEMAS[spec], f"Only objects whose {name} is this.")


def absolute_url(request: Request, path: str) -> str:
    """``path`` (from the root: ``/v2/...``) under the API's public URL (``LBAAS_PUBLIC_URL``);
    never from the request's ``Host`` or ``X-Forwarded-*`` headers, which the client writes."""
    return runtime_of(request).settings.links_base_url + path


def accepted(request: Request, response: Response, path: str, change: Accepted) -> None:
    """Headers of a 202: where to poll, how soon, and the operation to follow."""
    response.headers["Location"] = absolute_url(request, f"/v2/lbaas/{path}")
    response.headers["Retry-After"] = "1"
    response.headers["X-Operation-Id"] = str(change.operation.id)
    response.headers["ETag"] = etag(change.target)


def with_etag(response: Response, obj: TreeObject) -> None:
    response.headers["ETag"] = etag(obj)


def list_response(
    request: Request,
    query: ListQuery,
    collection: str,
    page: Page[Any],
    related: Sequence[Related],
    ctx: RequestContext,
    out: Out,
) -> JSONResponse:
    """A list of tree objects: each shown with ``out``, given its related ids."""
    bodies = [out(obj, rel, ctx) for obj, rel in zip(page.items, related, strict=True)]
    return page_response(request, query, collection, page, bodies)


def page_response(
    request: Request,
    query: ListQuery,
    collection: str,
    page: Page[Any],
    bodies: Sequence[BaseModel],
) -> JSONResponse:
    """A list body: the ``bodies`` of the page's objects, with the fields asked for only, and
    ``<collection>_links``."""
    items = [select_fields(body.model_dump(mode="json"), query.fields) for body in bodies]
    links = page_links(request, absolute_url(request, ""), page, lambda obj: obj.id)
    return JSONResponse({collection: items, f"{collection}_links": links})


@dataclass(frozen=True)
class LongPoll:
    wait_for: str | None
    timeout: float
    waiter: UUID | None
    """The token that waits (long polls are counted per token)."""

    def answers(self, obj: Settling) -> bool:
        """Whether the poll answers with ``obj`` as it is (always, without ``wait_for``)."""
        return self.wait_for is None or is_done(obj, self.wait_for)


async def if_match_header(
    if_match: str | None = Header(
        default=None,
        alias="If-Match",
        description="Change only if the object's ETag is still this one (else 412), or *.",
        json_schema_extra=not_null,
    ),
) -> str | None:
    return if_match


async def long_poll(
    wait_for: ProvisioningStatus | None = Query(
        default=None,
        description="Answer once the object leaves PENDING_* or reaches this status (long poll).",
        json_schema_extra=not_null,
    ),
    timeout: float = Query(default=30, gt=0, le=300, description="Seconds to wait at most."),
    ctx: RequestContext = Depends(request_context),
) -> LongPoll:
    return LongPoll(wait_for.value if wait_for else None, timeout, ctx.token_id)


async def read_settled(
    runtime: Runtime,
    poll: LongPoll,
    read: Callable[[], Awaitable[T]],
    loadbalancer_of: Callable[[T], UUID],
) -> T:
    """``read()``, or with ``wait_for`` the first read after the object's tree settles.

    A poll that has to wait takes one of its token's slots (429 when it holds them all).
    """
    mark = runtime.feed.mark()
    obj = await read()
    if poll.answers(obj):
        return obj
    assert poll.wait_for is not None, "a poll without wait_for answers at once"
    try:
        with runtime.waits.hold(poll.waiter):
            return await wait_settled(
                runtime.feed,
                loadbalancer_of(obj),
                read,
                (obj, mark),
                wait_for=poll.wait_for,
                timeout=poll.timeout,
            )
    except TooManyWaits as exc:
        raise ProblemError(
            429,
            "Too Many Requests",
            f"This token already holds {exc.limit} long polls (wait_for) at once, the most it "
            "may (LBAAS_MAX_WAITS_PER_TOKEN); retry once one has answered, or read the object "
            "without wait_for.",
            headers={"Retry-After": "1"},
        ) from None


def stats_body(row: StatsRow | None) -> StatsBody:
    """Totals as accumulated from the device's reports; zeros before the first."""
    counters = {name: getattr(row, name, 0) or 0 for name in StatsOut.model_fields}
    return StatsBody(stats=StatsOut(**counters))
