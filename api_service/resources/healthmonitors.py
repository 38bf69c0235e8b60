"""Health monitors: one per pool; HTTP settings only for HTTP(S) monitors; timeout ≤ delay."""

from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.listing import parse_int
from api_service.db.models import HealthMonitor, Pool
from api_service.errors import Conflict, Invalid
from api_service.resources.common import common_fields, loadbalancer_via
from api_service.resources.pools import live_pool
from api_service.schemas.common import IdRef
from api_service.schemas.healthmonitors import (
    HTTP_TYPES,
    HealthMonitorBody,
    HealthMonitorCreate,
    HealthMonitorCreateBody,
    HealthMonitorFields,
    HealthMonitorList,
    HealthMonitorOut,
    HealthMonitorUpdate,
    HealthMonitorUpdateBody,
    MonitorType,
)
from api_service.schemas.links import link
from api_service.services.objects import (
    apply_update,
    creation_fields,
    given_or_default,
    owner_project,
)
from api_service.services.resource import Related, Resource
from api_service.services.tree import Tree

DEFAULT_MAX_RETRIES_DOWN = 3
HTTP_DEFAULTS = {"http_method": "GET", "url_path": "/", "expected_codes": "200"}
"""What an HTTP or HTTPS monitor checks when a create leaves it out or an update sends null
(other monitors have none of these)."""
DEFAULTS: dict[str, object] = {
    "max_retries_down": DEFAULT_MAX_RETRIES_DOWN,
    **{name: None for name in HTTP_DEFAULTS},
}
"""A monitor's own fields when a create leaves them out or an update sends null."""


def new_healthmonitor(
    ctx: RequestContext, tree: Tree, pool: Pool, body: HealthMonitorCreate, generation: int
) -> HealthMonitor:
    project = owner_project(ctx, body.project_id, tree.lb.project_id)
    existing = tree.healthmonitor_of(pool.id)
    if existing is not None and not existing.deleting:
        raise Conflict(f"Pool {pool.id} already has health monitor {existing.id}.")
    _check_http_fields(body.type, body)
    _check_pool_protocol(body.type, pool)
    monitor = HealthMonitor(
        id=uuid4(),
        loadbalancer_id=tree.lb.id,
        pool_id=pool.id,
        type=body.type.value,
        delay=body.delay,
        timeout=body.timeout,
        max_retries=body.max_retries,
        **given_or_default(body, DEFAULTS),
        **creation_fields(project, body, generation),
    )
    _settle_http_fields(monitor)
    _check_timeout(monitor)
    tree.healthmonitors.append(monitor)
    return monitor


DATAGRAM_PROTOCOLS = frozenset({"UDP", "SCTP"})
DATAGRAM_MONITORS = frozenset({MonitorType.UDP_CONNECT, MonitorType.SCTP})
DATAGRAM_POOL_MONITORS = DATAGRAM_MONITORS | {MonitorType.TCP, MonitorType.HTTP}
"""Octavia's: UDP-CONNECT and SCTP monitors are for UDP and SCTP pools, which take those,
TCP and HTTP monitors only."""


def _check_pool_protocol(monitor_type: MonitorType, pool: Pool) -> None:
    if pool.protocol in DATAGRAM_PROTOCOLS and monitor_type not in DATAGRAM_POOL_MONITORS:
        allowed = ", ".join(sorted(t.value for t in DATAGRAM_POOL_MONITORS))
        raise Invalid("type", f"a {pool.protocol} pool takes {allowed} monitors only")
    if pool.protocol not in DATAGRAM_PROTOCOLS and monitor_type in DATAGRAM_MONITORS:
        raise Invalid("type", f"{monitor_type.value} monitors are for UDP and SCTP pools only")


def _check_http_fields(monitor_type: MonitorType, body: HealthMonitorFields) -> None:
    if monitor_type in HTTP_TYPES:
        return
    for name in HTTP_DEFAULTS:
        if getattr(body, name) is not None:
            raise Invalid(
                name, f"only HTTP and HTTPS monitors take {name}, not {monitor_type.value}"
            )


def _settle_http_fields(monitor: HealthMonitor) -> None:
    """An HTTP or HTTPS monitor's checks that are not set are the defaults."""
    if monitor.type in HTTP_TYPES:
        for name, default in HTTP_DEFAULTS.items():
            if getattr(monitor, name) is None:
                setattr(monitor, name, default)


def _check_timeout(monitor: HealthMonitor) -> None:
    if monitor.timeout > monitor.delay:
        raise Invalid("timeout", f"must not exceed delay ({monitor.timeout} > {monitor.delay})")


async def _locate(
    session: AsyncSession, ctx: RequestContext, body: HealthMonitorCreate, _: UUID | None
) -> UUID:
    return await loadbalancer_via(session, ctx, Pool, "Pool", body.pool_id, "pool_id")


def _new(
    ctx: RequestContext, tree: Tree, body: HealthMonitorCreate, generation: int, _: UUID | None
) -> HealthMonitor:
    assert body.pool_id is not None, "located by pool_id"
    return new_healthmonitor(ctx, tree, live_pool(tree, body.pool_id), body, generation)


def _update(tree: Tree, monitor: HealthMonitor, body: HealthMonitorUpdate) -> None:
    _check_http_fields(MonitorType(monitor.type), body)
    apply_update(monitor, body)
    _settle_http_fields(monitor)
    _check_timeout(monitor)


def healthmonitor_out(monitor: HealthMonitor, _: Related, ctx: RequestContext) -> HealthMonitorOut:
    return HealthMonitorOut(
        **common_fields(monitor),
        type=monitor.type,
        delay=monitor.delay,
        timeout=monitor.timeout,
        max_retries=monitor.max_retries,
        max_retries_down=monitor.max_retries_down,
        http_method=monitor.http_method,
        url_path=monitor.url_path,
        expected_codes=monitor.expected_codes,
        pools=[IdRef(id=monitor.pool_id)],
    )


_THIS = {"path.healthmonitor_id": "$response.body#/healthmonitor/id"}

HEALTHMONITOR: Resource[Any] = Resource(
    key="healthmonitor",
    plural="healthmonitors",
    title="Health monitor",
    operation="HealthMonitor",
    operations="HealthMonitors",
    path_id="healthmonitor_id",
    summary="a health monitor",
    plural_summary="health monitors",
    model=HealthMonitor,
    in_tree=lambda tree: tree.healthmonitors,
    locate=_locate,
    new=_new,
    update=_update,
    defaults=DEFAULTS,
    out=healthmonitor_out,
    create_body=HealthMonitorCreateBody,
    update_body=HealthMonitorUpdateBody,
    body=HealthMonitorBody,
    listing=HealthMonitorList,
    filters={
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
    sorts=frozenset({"type", "delay", "timeout", "max_retries"}),
    links={
        "UpdateHealthMonitor": link("updateHealthMonitor", "Change it.", _THIS),
        "DeleteHealthMonitor": link("deleteHealthMonitor", "Delete it.", _THIS),
    },
)
