"""Pool rules: a pool belongs to a load balancer, optionally as a listener's default pool."""

from dataclasses import dataclass
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.models import Pool, TreeObject
from api_service.errors import Invalid
from api_service.schemas.pools import PoolCreate, PoolFields, PoolUpdate
from api_service.services.changes import Accepted, Changes, Edit, require_etag, require_mutable
from api_service.services.listeners import set_default_pool
from api_service.services.objects import apply_update, creation_fields, find, owner_project, visible
from api_service.services.tree import Tree, mark
from shared.status import ProvisioningStatus


def new_pool(ctx: RequestContext, tree: Tree, body: PoolCreate, generation: int) -> Pool:
    """A pool in PENDING_CREATE added to ``tree``; with ``listener_id``, that listener's default."""
    project = owner_project(ctx, body.project_id, tree.lb.project_id)
    pool = Pool(
        id=uuid4(),
        loadbalancer_id=tree.lb.id,
        protocol=body.protocol.value,
        lb_algorithm=body.lb_algorithm.value,
        session_persistence=_persistence(body),
        **creation_fields(project, body, generation),
    )
    tree.pools.append(pool)
    if body.listener_id is not None:
        listener = next(
            (lst for lst in tree.listeners if lst.id == body.listener_id and not lst.deleting),
            None,
        )
        if listener is None:
            raise Invalid(
                "listener_id", f"listener {body.listener_id} is not on this load balancer"
            )
        set_default_pool(tree, listener, pool.id)
    return pool


def _persistence(body: PoolFields) -> dict[str, object] | None:
    if body.session_persistence is None:
        return None
    return body.session_persistence.model_dump(exclude_none=True, mode="json")


@dataclass(frozen=True)
class PoolService:
    sessions: SessionFactory
    changes: Changes

    async def get(self, ctx: RequestContext, pool_id: UUID) -> Pool:
        async with self.sessions() as session:
            return await visible(session, ctx, Pool, pool_id, "Pool")

    async def create(self, ctx: RequestContext, body: PoolCreate) -> Accepted:
        loadbalancer_id = body.loadbalancer_id
        if body.listener_id is not None:
            listener = await self.changes.visible_listener(ctx, body.listener_id)
            if loadbalancer_id not in (None, listener.loadbalancer_id):
                raise Invalid("loadbalancer_id", "is not the listener's load balancer")
            loadbalancer_id = listener.loadbalancer_id
        if loadbalancer_id is None:
            raise Invalid("listener_id", "either listener_id or loadbalancer_id is required")

        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            pool = new_pool(ctx, tree, body, generation)
            session.add(pool)
            return pool

        return await self.changes.change(
            ctx, loadbalancer_id, edit, action="create", target_type="pool"
        )

    async def update(
        self, ctx: RequestContext, pool_id: UUID, body: PoolUpdate, if_match: str | None
    ) -> Accepted:
        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            pool = find(tree.pools, pool_id, "Pool")
            require_mutable(pool, "Pool")
            require_etag(pool, if_match)
            apply_update(pool, body, skip=frozenset({"session_persistence"}))
            if "session_persistence" in body.model_fields_set:
                pool.session_persistence = _persistence(body)
            mark(pool, ProvisioningStatus.PENDING_UPDATE, generation)
            return pool

        return await self._change(ctx, pool_id, edit, "update")

    async def delete(self, ctx: RequestContext, pool_id: UUID, if_match: str | None) -> Accepted:
        """The pool goes with its members and health monitor."""

        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            pool = find(tree.pools, pool_id, "Pool")
            require_etag(pool, if_match)
            for child in [*tree.members_of(pool.id), tree.healthmonitor_of(pool.id), pool]:
                if child is not None:
                    mark(child, ProvisioningStatus.PENDING_DELETE, generation)
            return pool

        return await self._change(ctx, pool_id, edit, "delete")

    async def _change(
        self, ctx: RequestContext, pool_id: UUID, edit: Edit, action: str
    ) -> Accepted:
        return await self.changes.change_child(
            ctx, Pool, pool_id, edit, action=action, target_type="pool"
        )
