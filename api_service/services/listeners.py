"""Listener rules: one per port on a load balancer; a default pool it can forward to."""

from dataclasses import dataclass
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.models import Listener, TreeObject
from api_service.errors import Conflict, Invalid, NotFound
from api_service.schemas.listeners import ListenerCreate, ListenerFields, ListenerUpdate
from api_service.schemas.pools import COMPATIBLE_PROTOCOLS
from api_service.services.changes import (
    Accepted,
    Changes,
    Edit,
    require_etag,
    require_mutable,
)
from api_service.services.objects import (
    apply_update,
    creation_fields,
    find,
    owner_project,
    visible,
)
from api_service.services.tree import Tree, mark
from shared.status import ProvisioningStatus

DEFAULT_TIMEOUTS = {
    "timeout_client_data": 50_000,
    "timeout_member_connect": 5_000,
    "timeout_member_data": 50_000,
    "timeout_tcp_inspect": 0,
}


def new_listener(
    ctx: RequestContext, tree: Tree, body: ListenerCreate, generation: int
) -> Listener:
    """A listener in PENDING_CREATE, added to ``tree``; checks port and default pool."""
    project = owner_project(ctx, body.project_id, tree.lb.project_id)
    taken = {lst.protocol_port for lst in tree.listeners if not lst.deleting}
    if body.protocol_port in taken:
        raise Conflict(
            f"Load balancer {tree.lb.id} already has a listener on port {body.protocol_port}."
        )
    _check_insert_headers(body.protocol.value, body)
    given = body.model_dump(exclude_none=True, mode="json")
    listener = Listener(
        id=uuid4(),
        loadbalancer_id=tree.lb.id,
        protocol=body.protocol.value,
        protocol_port=body.protocol_port,
        connection_limit=given.get("connection_limit", -1),
        insert_headers=given.get("insert_headers", {}),
        allowed_cidrs=given.get("allowed_cidrs", []),
        **{name: given.get(name, default) for name, default in DEFAULT_TIMEOUTS.items()},
        **creation_fields(project, body, generation),
    )
    if body.default_pool_id is not None:
        set_default_pool(tree, listener, body.default_pool_id)
    tree.listeners.append(listener)
    return listener


def set_default_pool(tree: Tree, listener: Listener, pool_id: UUID | None) -> None:
    if pool_id is None:
        listener.default_pool_id = None
        return
    pool = next((p for p in tree.pools if p.id == pool_id and not p.deleting), None)
    if pool is None:
        raise NotFound("Pool", pool_id, field="default_pool_id")
    if pool.protocol not in COMPATIBLE_PROTOCOLS[listener.protocol]:
        raise Invalid(
            "default_pool_id",
            f"a {listener.protocol} listener cannot use a {pool.protocol} pool",
        )
    users = [other for other in tree.listeners_of(pool_id) if other is not listener]
    if users:
        raise Conflict(f"Pool {pool_id} is already the default pool of listener {users[0].id}.")
    listener.default_pool_id = pool_id


def _check_insert_headers(protocol: str, body: ListenerFields) -> None:
    if body.insert_headers and protocol != "HTTP":
        raise Invalid(
            "insert_headers", f"headers can only be inserted by HTTP listeners, not {protocol}"
        )


@dataclass(frozen=True)
class ListenerService:
    sessions: SessionFactory
    changes: Changes

    async def get(self, ctx: RequestContext, listener_id: UUID) -> Listener:
        async with self.sessions() as session:
            return await visible(session, ctx, Listener, listener_id, "Listener")

    async def create(self, ctx: RequestContext, body: ListenerCreate) -> Accepted:
        if body.loadbalancer_id is None:
            raise Invalid("loadbalancer_id", "is required")

        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            listener = new_listener(ctx, tree, body, generation)
            session.add(listener)
            return listener

        return await self.changes.change(
            ctx, body.loadbalancer_id, edit, action="create", target_type="listener"
        )

    async def update(
        self, ctx: RequestContext, listener_id: UUID, body: ListenerUpdate, if_match: str | None
    ) -> Accepted:
        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            listener = find(tree.listeners, listener_id, "Listener")
            require_mutable(listener, "Listener")
            require_etag(listener, if_match)
            _check_insert_headers(listener.protocol, body)
            apply_update(listener, body, skip=frozenset({"default_pool_id"}))
            if "default_pool_id" in body.model_fields_set:
                set_default_pool(tree, listener, body.default_pool_id)
            mark(listener, ProvisioningStatus.PENDING_UPDATE, generation)
            return listener

        return await self._change(ctx, listener_id, edit, "update")

    async def delete(
        self, ctx: RequestContext, listener_id: UUID, if_match: str | None
    ) -> Accepted:
        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            listener = find(tree.listeners, listener_id, "Listener")
            require_etag(listener, if_match)
            mark(listener, ProvisioningStatus.PENDING_DELETE, generation)
            return listener

        return await self._change(ctx, listener_id, edit, "delete")

    async def _change(
        self, ctx: RequestContext, listener_id: UUID, edit: Edit, action: str
    ) -> Accepted:
        return await self.changes.change_child(
            ctx, Listener, listener_id, edit, action=action, target_type="listener"
        )
