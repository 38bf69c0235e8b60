"""What the declarations share: finding a parent, and the fields every object shows."""

from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.models import TreeObject
from api_service.errors import Invalid, NotFound


async def loadbalancer_via(
    session: AsyncSession,
    ctx: RequestContext,
    model: type[TreeObject],
    title: str,
    object_id: UUID | None,
    field: str,
) -> UUID:
    """The load balancer of the visible object ``object_id`` of ``model`` (named by ``field``)."""
    if object_id is None:
        raise Invalid(field, "is required")
    obj = await session.get(model, object_id)
    if obj is None or not ctx.owns(obj.project_id):
        raise NotFound(title, object_id)
    loadbalancer_id: UUID = getattr(obj, "loadbalancer_id", obj.id)
    return loadbalancer_id


def common_fields(obj: TreeObject) -> dict[str, Any]:
    """The fields of every Load Balancer v2 object."""
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
