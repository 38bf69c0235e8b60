"""Objects with the ids of their related objects, as the Load Balancer v2 bodies show them.

Related ids of a whole page are read with one query per relation, never per row.
"""

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.listing import ListQuery, Page, fetch_page, parse_bool, parse_int
from api_service.db.models import HealthMonitor, Listener, LoadBalancer, Member, Pool, TreeObject

T = TypeVar("T", bound=TreeObject)

COMMON_FILTERS: dict[str, Callable[[str], object]] = {
    "id": UUID,
    "project_id": str,
    "name": str,
    "description": str,
    "admin_state_up": parse_bool,
    "provisioning_status": str,
    "operating_status": str,
}
COMMON_SORTS = frozenset(
    {
        "id",
        "project_id",
        "name",
        "description",
        "admin_state_up",
        "provisioning_status",
        "operating_status",
        "created_at",
        "updated_at",
    }
)


def parse_address(value: str) -> object:
    address = ip_address(value)
    if getattr(address, "scope_id", None):
        raise ValueError("an address here has no scope (zone) id")
    return address


FILTERS: dict[type[TreeObject], dict[str, Callable[[str], object]]] = {
    LoadBalancer: {
        "vip_address": parse_address,
        "provider": str,
        "vip_subnet_id": str,
        "vip_network_id": str,
        "device_id": UUID,
    },
    Listener: {
        "loadbalancer_id": UUID,
        "protocol": str,
        "protocol_port": parse_int,
        "connection_limit": parse_int,
        "default_pool_id": UUID,
    },
    Pool: {"loadbalancer_id": UUID, "protocol": str, "lb_algorithm": str},
    Member: {
        "address": parse_address,
        "protocol_port": parse_int,
        "weight": parse_int,
        "backup": parse_bool,
        "subnet_id": str,
    },
    HealthMonitor: {
        "pool_id": UUID,
        "type": str,
        "delay": parse_int,
        "timeout": parse_int,
        "max_retries": parse_int,
        "max_retries_down": parse_int,
        "http_method": str,
        "url_path": str,
        "expected_codes": str,
    },
}
SORTS: dict[type[TreeObject], frozenset[str]] = {
    LoadBalancer: frozenset({"vip_address", "provider"}),
    Listener: frozenset({"protocol", "protocol_port", "connection_limit"}),
    Pool: frozenset({"protocol", "lb_algorithm"}),
    Member: frozenset({"address", "protocol_port", "weight", "backup"}),
    HealthMonitor: frozenset({"type", "delay", "timeout", "max_retries"}),
}


@dataclass(frozen=True)
class Related:
    """Ids of what an object refers to, keyed by relation name (``listeners``, ``members``...)."""

    ids: Mapping[str, Sequence[UUID]] = field(default_factory=dict)

    def of(self, name: str) -> list[UUID]:
        return list(self.ids.get(name, ()))


async def list_page(
    sessions: SessionFactory,
    ctx: RequestContext,
    model: type[T],
    query: ListQuery,
    scope: ColumnElement[bool] | None = None,
) -> tuple[Page[T], list[Related]]:
    """One page of ``model`` the caller may see, and the related ids of each object."""
    if not ctx.reads_all:
        owned = model.project_id == ctx.project_id
        scope = owned if scope is None else scope & owned
    async with sessions() as session:
        page = await fetch_page(
            session,
            model,
            query,
            scope=scope,
            filterable={**COMMON_FILTERS, **FILTERS[model]},
            sortable=COMMON_SORTS | SORTS[model],
        )
        return page, await related(session, page.items)


async def related(session: AsyncSession, objects: Sequence[TreeObject]) -> list[Related]:
    """The related ids each object's body lists (load balancers and pools have some)."""
    ids = [obj.id for obj in objects]
    if not objects:
        return []
    if isinstance(objects[0], LoadBalancer):
        listeners = await _grouped(session, Listener.loadbalancer_id, Listener.id, ids)
        pools = await _grouped(session, Pool.loadbalancer_id, Pool.id, ids)
        return [Related({"listeners": listeners[i], "pools": pools[i]}) for i in ids]
    if isinstance(objects[0], Pool):
        listeners = await _grouped(session, Listener.default_pool_id, Listener.id, ids)
        members = await _grouped(session, Member.pool_id, Member.id, ids)
        monitors = await _grouped(session, HealthMonitor.pool_id, HealthMonitor.id, ids)
        return [
            Related(
                {"listeners": listeners[i], "members": members[i], "healthmonitor": monitors[i]}
            )
            for i in ids
        ]
    return [Related() for _ in objects]


async def _grouped(
    session: AsyncSession, parent: Any, child: Any, parent_ids: list[UUID]
) -> defaultdict[UUID, list[UUID]]:
    rows = await session.execute(
        select(parent, child).where(parent.in_(parent_ids)).order_by(child)
    )
    grouped: defaultdict[UUID, list[UUID]] = defaultdict(list)
    for parent_id, child_id in rows.tuples():
        grouped[parent_id].append(child_id)
    return grouped
