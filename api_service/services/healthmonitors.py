"""Health monitor rules: one per pool; HTTP settings only for HTTP(S) monitors."""

from dataclasses import dataclass
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.models import HealthMonitor, Pool, TreeObject
from api_service.errors import Conflict, Invalid
from api_service.schemas.healthmonitors import (
    HTTP_TYPES,
    HealthMonitorCreate,
    HealthMonitorFields,
    HealthMonitorUpdate,
    MonitorType,
)
from api_service.services.changes import Accepted, Changes, Edit, require_etag, require_mutable
from api_service.services.members import live_pool
from api_service.services.objects import apply_update, creation_fields, find, owner_project, visible
from api_service.services.tree import Tree, mark
from shared.status import ProvisioningStatus

_HTTP_FIELDS = ("http_method", "url_path", "expected_codes")


def new_healthmonitor(
    ctx: RequestContext, tree: Tree, pool: Pool, body: HealthMonitorCreate, generation: int
) -> HealthMonitor:
    project = owner_project(ctx, body.project_id, tree.lb.project_id)
    existing = tree.healthmonitor_of(pool.id)
    if existing is not None and not existing.deleting:
        raise Conflict(f"Pool {pool.id} already has health monitor {existing.id}.")
    _check_http_fields(body.type, body)
    http = body.type in HTTP_TYPES
    monitor = HealthMonitor(
        id=uuid4(),
        loadbalancer_id=tree.lb.id,
        pool_id=pool.id,
        type=body.type.value,
        delay=body.delay,
        timeout=body.timeout,
        max_retries=body.max_retries,
        max_retries_down=body.max_retries_down or 3,
        http_method=(body.http_method or "GET") if http else None,
        url_path=(body.url_path or "/") if http else None,
        expected_codes=(body.expected_codes or "200") if http else None,
        **creation_fields(project, body, generation),
    )
    _check_timeout(monitor)
    tree.healthmonitors.append(monitor)
    return monitor


def _check_http_fields(monitor_type: MonitorType, body: HealthMonitorFields) -> None:
    if monitor_type in HTTP_TYPES:
        return
    for name in _HTTP_FIELDS:
        if getattr(body, name) is not None:
            raise Invalid(
                name, f"only HTTP and HTTPS monitors take {name}, not {monitor_type.value}"
            )


def _check_timeout(monitor: HealthMonitor) -> None:
    if monitor.timeout > monitor.delay:
        raise Invalid("timeout", f"must not exceed delay ({monitor.timeout} > {monitor.delay})")


@dataclass(frozen=True)
class HealthMonitorService:
    sessions: SessionFactory
    changes: Changes

    async def get(self, ctx: RequestContext, monitor_id: UUID) -> HealthMonitor:
        async with self.sessions() as session:
            return await visible(session, ctx, HealthMonitor, monitor_id, "Health monitor")

    async def create(self, ctx: RequestContext, body: HealthMonitorCreate) -> Accepted:
        if body.pool_id is None:
            raise Invalid("pool_id", "is required")
        pool_id = body.pool_id

        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            monitor = new_healthmonitor(ctx, tree, live_pool(tree, pool_id), body, generation)
            session.add(monitor)
            return monitor

        return await self.changes.change_child(
            ctx, Pool, pool_id, edit, action="create", target_type="healthmonitor"
        )

    async def update(
        self, ctx: RequestContext, monitor_id: UUID, body: HealthMonitorUpdate, if_match: str | None
    ) -> Accepted:
        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            monitor = find(tree.healthmonitors, monitor_id, "Health monitor")
            require_mutable(monitor, "Health monitor")
            require_etag(monitor, if_match)
            _check_http_fields(MonitorType(monitor.type), body)
            apply_update(monitor, body)
            _check_timeout(monitor)
            mark(monitor, ProvisioningStatus.PENDING_UPDATE, generation)
            return monitor

        return await self._change(ctx, monitor_id, edit, "update")

    async def delete(self, ctx: RequestContext, monitor_id: UUID, if_match: str | None) -> Accepted:
        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            monitor = find(tree.healthmonitors, monitor_id, "Health monitor")
            require_etag(monitor, if_match)
            mark(monitor, ProvisioningStatus.PENDING_DELETE, generation)
            return monitor

        return await self._change(ctx, monitor_id, edit, "delete")

    async def _change(
        self, ctx: RequestContext, monitor_id: UUID, edit: Edit, action: str
    ) -> Accepted:
        return await self.changes.change_child(
            ctx, HealthMonitor, monitor_id, edit, action=action, target_type="healthmonitor"
        )
