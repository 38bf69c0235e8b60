"""What every resource router does the same way: 202 headers, ETags, list bodies."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from fastapi import Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api_service.context import RequestContext
from api_service.db.listing import ListQuery, Page, page_links, select_fields
from api_service.db.models import TreeObject
from api_service.runtime import Runtime
from api_service.services.changes import Accepted, etag
from api_service.services.views import Related
from api_service.services.waiting import wait_settled
from shared.status import ProvisioningStatus

T = TypeVar("T", bound=TreeObject)

Out = Callable[[Any, Related, RequestContext], BaseModel]


def common_fields(obj: TreeObject) -> dict[str, Any]:
    return {
        "id": obj.id,
        "project_id": obj.project_id,
        "tenant_id": obj.project_id,
        "name": obj.name,
        "description": obj.description,
        "admin_state_up": obj.admin_state_up,
        "provisioning_status": obj.provisioning_status,
        "operating_status": obj.operating_status,
        "status_reason": obj.status_reason,
        "tags": list(obj.tags),
        "created_at": obj.created_at,
        "updated_at": obj.updated_at,
    }


def accepted(request: Request, response: Response, path: str, change: Accepted) -> None:
    """Headers of a 202: where to poll, how soon, and the operation to follow."""
    response.headers["Location"] = f"{request.base_url}v2/lbaas/{path}"
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
    items = [
        select_fields(out(obj, rel, ctx).model_dump(mode="json"), query.fields)
        for obj, rel in zip(page.items, related, strict=True)
    ]
    links = page_links(request, page, collection, lambda obj: obj.id)
    return JSONResponse({collection: items, f"{collection}_links": links})


@dataclass(frozen=True)
class LongPoll:
    wait_for: str | None
    timeout: float


def long_poll(
    wait_for: ProvisioningStatus | None = Query(
        default=None,
        description="Answer once the object leaves PENDING_* or reaches this status (long poll).",
    ),
    timeout: float = Query(default=30, gt=0, le=300, description="Seconds to wait at most."),
) -> LongPoll:
    return LongPoll(wait_for.value if wait_for else None, timeout)


async def read_settled(
    runtime: Runtime,
    poll: LongPoll,
    read: Callable[[], Awaitable[T]],
    loadbalancer_of: Callable[[T], UUID],
) -> T:
    """``read()``, or with ``wait_for`` the first read after the object's tree settles."""
    obj = await read()
    if poll.wait_for is None:
        return obj
    return await wait_settled(
        runtime.feed, loadbalancer_of(obj), read, wait_for=poll.wait_for, timeout=poll.timeout
    )
