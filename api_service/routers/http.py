"""What every resource router does the same way: 202 headers, ETags, list bodies."""

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api_service.context import RequestContext
from api_service.db.listing import ListQuery, Page, page_links, select_fields
from api_service.db.models import TreeObject
from api_service.services.changes import Accepted, etag
from api_service.services.views import Related

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
