"""Helpers every tree resource shares: visibility, new objects, field updates."""

from typing import TypeVar
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.models import TreeObject
from api_service.errors import Conflict, Forbidden, NotFound
from shared.status import OperatingStatus, ProvisioningStatus

T = TypeVar("T", bound=TreeObject)


async def visible(
    session: AsyncSession, ctx: RequestContext, model: type[T], obj_id: UUID, kind: str
) -> T:
    """The object if it exists and the caller may see it; 404 otherwise (existence not revealed)."""
    obj = await session.get(model, obj_id)
    if obj is None or not ctx.owns(obj.project_id):
        raise NotFound(kind, obj_id)
    return obj


def find(objects: list[T], obj_id: UUID, kind: str) -> T:
    for obj in objects:
        if obj.id == obj_id:
            return obj
    raise NotFound(kind, obj_id)


def creation_fields(project_id: str, body: BaseModel, generation: int) -> dict[str, object]:
    """Common columns of a new object in PENDING_CREATE at ``generation``."""
    given = body.model_dump(exclude_none=True)
    return {
        "project_id": project_id,
        "name": given.get("name", ""),
        "description": given.get("description", ""),
        "admin_state_up": given.get("admin_state_up", True),
        "tags": given.get("tags", []),
        "provisioning_status": ProvisioningStatus.PENDING_CREATE.value,
        "operating_status": OperatingStatus.OFFLINE.value,
        "changed_generation": generation,
        "deleting": False,
    }


def apply_update(obj: TreeObject, body: BaseModel, *, skip: frozenset[str] = frozenset()) -> None:
    """Copy the fields the client sent (and did not send as null) onto ``obj``."""
    for name, value in body.model_dump(exclude_unset=True, mode="json").items():
        if value is not None and name not in skip:
            setattr(obj, name, value)


def owner_project(ctx: RequestContext, requested: str | None, parent_project: str) -> str:
    """Children live in their load balancer's project; only an admin may name it."""
    if requested is not None:
        if not ctx.is_admin:
            raise Forbidden("Only an admin may set project_id.")
        if requested != parent_project:
            raise Conflict(
                f"project_id {requested!r} is not the project of the load balancer "
                f"({parent_project!r}), where its objects live."
            )
    return parent_project
