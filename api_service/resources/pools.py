"""Pools: of a load balancer, optionally a listener's default pool; deleted with their members
and health monitor, but not while an L7 policy redirects to them."""

from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.listing import Columns, Filter
from api_service.db.models import HealthMonitor, Listener, LoadBalancer, Member, Pool
from api_service.errors import Conflict, Invalid
from api_service.resources.common import common_fields, loadbalancer_via
from api_service.resources.listeners import set_default_pool
from api_service.schemas.common import IdRef
from api_service.schemas.links import link
from api_service.schemas.pools import (
    PoolBody,
    PoolCreate,
    PoolCreateBody,
    PoolFields,
    PoolList,
    PoolOut,
    PoolUpdate,
    PoolUpdateBody,
    SessionPersistenceOut,
)
from api_service.services.changes import require_mutable
from api_service.services.objects import apply_update, creation_fields, find, owner_project
from api_service.services.resource import LOADBALANCER_ID_FILTERS, Related, Relation, Resource
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


def live_pool(tree: Tree, pool_id: UUID) -> Pool:
    """A pool of the tree that is not being deleted, for a new child of it."""
    pool = find(tree.pools, pool_id, "Pool")
    require_mutable(pool, "Pool")
    return pool


def _persistence(body: PoolFields) -> dict[str, object] | None:
    if body.session_persistence is None:
        return None
    return body.session_persistence.model_dump(exclude_none=True, mode="json")


async def _locate(
    session: AsyncSession, ctx: RequestContext, body: PoolCreate, _: UUID | None
) -> UUID:
    """The listener's load balancer (which ``loadbalancer_id``, if given, must be), or the one
    ``loadbalancer_id`` names."""
    if body.listener_id is not None:
        loadbalancer_id = await loadbalancer_via(
            session, ctx, Listener, "Listener", body.listener_id, "listener_id"
        )
        if body.loadbalancer_id not in (None, loadbalancer_id):
            raise Invalid("loadbalancer_id", "is not the listener's load balancer")
        return loadbalancer_id
    if body.loadbalancer_id is None:
        raise Invalid("listener_id", "either listener_id or loadbalancer_id is required")
    return await loadbalancer_via(
        session, ctx, LoadBalancer, "Load balancer", body.loadbalancer_id, "loadbalancer_id"
    )


def _new(
    ctx: RequestContext, tree: Tree, body: PoolCreate, generation: int, _: UUID | None
) -> Pool:
    return new_pool(ctx, tree, body, generation)


def _update(tree: Tree, pool: Pool, body: PoolUpdate) -> None:
    apply_update(pool, body, skip=frozenset({"session_persistence"}))
    if "session_persistence" in body.model_fields_set:
        pool.session_persistence = _persistence(body)


def _delete(tree: Tree, pool: Pool, generation: int) -> None:
    redirecting = [p for p in tree.l7policies if p.redirect_pool_id == pool.id and not p.deleting]
    if redirecting:
        raise Conflict(f"Pool {pool.id} is the redirect pool of L7 policy {redirecting[0].id}.")
    for child in [*tree.members_of(pool.id), tree.healthmonitor_of(pool.id), pool]:
        if child is not None:
            mark(child, ProvisioningStatus.PENDING_DELETE, generation)


def pool_out(pool: Pool, rel: Related, ctx: RequestContext) -> PoolOut:
    monitors = rel.of("healthmonitor")
    return PoolOut(
        **common_fields(pool),
        protocol=pool.protocol,
        lb_algorithm=pool.lb_algorithm,
        session_persistence=(
            SessionPersistenceOut.model_validate(pool.session_persistence)
            if pool.session_persistence
            else None
        ),
        listeners=[IdRef(id=i) for i in rel.of("listeners")],
        loadbalancers=[IdRef(id=pool.loadbalancer_id)],
        members=[IdRef(id=i) for i in rel.of("members")],
        healthmonitor_id=monitors[0] if monitors else None,
    )


def _default_pool_of(columns: Columns, listener_ids: list[UUID]) -> ColumnElement[bool]:
    return columns["id"].in_(select(Listener.default_pool_id).where(Listener.id.in_(listener_ids)))


def _monitored_by(columns: Columns, monitor_ids: list[UUID]) -> ColumnElement[bool]:
    return columns["id"].in_(select(HealthMonitor.pool_id).where(HealthMonitor.id.in_(monitor_ids)))


_MONITORED_BY = Filter(UUID, _monitored_by, "Only the pool this health monitor checks.")

_ID = "$response.body#/pool/id"
_THIS = {"path.pool_id": _ID}

POOL: Resource[Any] = Resource(
    key="pool",
    plural="pools",
    title="Pool",
    operation="Pool",
    operations="Pools",
    path_id="pool_id",
    summary="a pool",
    plural_summary="pools",
    model=Pool,
    in_tree=lambda tree: tree.pools,
    locate=_locate,
    new=_new,
    update=_update,
    delete=_delete,
    out=pool_out,
    create_body=PoolCreateBody,
    update_body=PoolUpdateBody,
    body=PoolBody,
    listing=PoolList,
    filters={
        **LOADBALANCER_ID_FILTERS,
        "protocol": str,
        "lb_algorithm": str,
        "listener_id": Filter(UUID, _default_pool_of, "Only the default pool of this listener."),
        "healthmonitor_id": _MONITORED_BY,
        "health_monitor_id": _MONITORED_BY,
    },
    sorts=frozenset({"protocol", "lb_algorithm"}),
    defaults={"session_persistence": None},
    related={
        "listeners": Relation(Listener.default_pool_id, Listener.id),
        "members": Relation(Member.pool_id, Member.id),
        "healthmonitor": Relation(HealthMonitor.pool_id, HealthMonitor.id),
    },
    links={
        "CreateMember": link("createMember", "Add a member.", _THIS),
        "ReplaceMembers": link("replaceMembers", "Replace its members.", _THIS),
        "ListMembers": link("listMembers", "List its members.", _THIS),
        "CreateHealthMonitor": link(
            "createHealthMonitor", "Monitor its members.", body={"healthmonitor": {"pool_id": _ID}}
        ),
        "UpdatePool": link("updatePool", "Change it.", _THIS),
        "DeletePool": link("deletePool", "Delete it.", _THIS),
    },
)
