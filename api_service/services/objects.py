"""Helpers every tree resource shares: visibility, new objects, field updates."""

from collections.abc import Mapping
from copy import deepcopy
from typing import TypeVar
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.models import TreeObject
from api_service.errors import Conflict, Forbidden, Invalid, NotFound
from shared.status import OperatingStatus, ProvisioningStatus

T = TypeVar("T", bound=TreeObject)
B = TypeVar("B", bound=BaseModel)

COMMON_DEFAULTS: Mapping[str, object] = {
    "name": "",
    "description": "",
    "admin_state_up": True,
    "tags": [],
}
"""What the fields every object has are when a create leaves them out, or an update sends
null (each resource declares its own besides: ``Resource.defaults``)."""


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
    return {
        "project_id": project_id,
        **given_or_default(body, COMMON_DEFAULTS),
        "provisioning_status": ProvisioningStatus.PENDING_CREATE.value,
        "operating_status": OperatingStatus.OFFLINE.value,
        "changed_generation": generation,
        "deleting": False,
    }


def given_or_default(body: BaseModel, defaults: Mapping[str, object]) -> dict[str, object]:
    """Each field of ``defaults``: as ``body`` gives it (JSON values), or its default."""
    given = body.model_dump(exclude_none=True, mode="json")
    return {name: given.get(name, deepcopy(default)) for name, default in defaults.items()}


def reset_nulls(body: B, defaults: Mapping[str, object], path: str) -> B:
    """``body`` with each field sent as null set to its default, as Octavia resets it (a CLI's
    ``unset``); a field without a default (a required one) cannot be reset: 400 naming it
    (``path``: where the body is, ``listener``)."""
    nulls = [name for name in body.model_fields_set if getattr(body, name) is None]
    for name in nulls:
        if name not in defaults:
            raise Invalid(f"{path}.{name}", "cannot be null: it has no default to go back to")
    return body.model_copy(update={name: deepcopy(defaults[name]) for name in nulls})


def apply_update(obj: TreeObject, body: BaseModel, *, skip: frozenset[str] = frozenset()) -> None:
    """Copy the fields the client sent onto ``obj`` (nulls reset first: ``reset_nulls``)."""
    for name, value in body.model_dump(exclude_unset=True, mode="json").items():
        if name not in skip:
            setattr(obj, name, value)


def requested_project(ctx: RequestContext, requested: str | None) -> str:
    """The project a body's ``project_id`` names: the caller's own when it names none; only an
    admin may name another (a member may name its own, as Octavia accepts)."""
    if requested is None or requested == ctx.project_id:
        return ctx.project_id
    if not ctx.is_admin:
        raise Forbidden("Only an admin may set project_id to another project than its own.")
    return requested


def owner_project(ctx: RequestContext, requested: str | None, parent_project: str) -> str:
    """Children live in their load balancer's project, which ``project_id`` may name."""
    if requested is not None and requested_project(ctx, requested) != parent_project:
        raise Conflict(
            f"project_id {requested!r} is not the project of the load balancer "
            f"({parent_project!r}), where its objects live."
        )
    return parent_project
