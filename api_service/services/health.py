"""Status reports: operating statuses and traffic totals, as the devices show them.

A report changes no provisioning status and does not take a load balancer's
change lock (``FOR UPDATE``). It takes ``FOR NO KEY UPDATE`` on the device's
load balancers first, in id order, which waits only for a change or a result
being written (milliseconds, never a ``PENDING`` apply), makes two reports of
one device run one after the other, and keeps the order every writer locks
in: load balancers, then their objects, then the device row. It updates
only the operating statuses that changed, leaving ``updated_at`` and so the
ETag alone. Reports are ordered by when the API received them, not by the
agent's clock: only a report received after the last one applied for its
device changes anything (one from the future is refused); the device row,
updated last, is the fence.

Members take the status the device shows; pools, listeners and load balancers
are rolled up from them: ONLINE, DEGRADED when some members are down, ERROR
when all are. Anything with ``admin_state_up: false`` is OFFLINE, and so is
every load balancer of a device that stopped answering.
"""

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import ARRAY, Table, and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.models import (
    Device,
    Listener,
    ListenerStats,
    LoadBalancer,
    LoadBalancerStats,
    Member,
    Pool,
    StatsRow,
    TreeObject,
)
from shared.messages import Counters, LoadBalancerStatus, StatusReport
from shared.status import OperatingStatus

log = logging.getLogger(__name__)

MAX_CLOCK_SKEW = timedelta(seconds=5)
CUMULATIVE = ("bytes_in", "bytes_out", "request_errors", "total_connections")
ONLINE, OFFLINE, ERROR, DEGRADED = (
    OperatingStatus.ONLINE,
    OperatingStatus.OFFLINE,
    OperatingStatus.ERROR,
    OperatingStatus.DEGRADED,
)


def pool_status(admin_state_up: bool, members: Iterable[OperatingStatus]) -> OperatingStatus:
    if not admin_state_up:
        return OFFLINE
    counted = [status for status in members if status is not OFFLINE]
    down = sum(status is ERROR for status in counted)
    if counted and down == len(counted):
        return ERROR
    return DEGRADED if down else ONLINE


def listener_status(
    admin_state_up: bool, frontend: OperatingStatus | None, pool: OperatingStatus | None
) -> OperatingStatus:
    if not admin_state_up or frontend is OFFLINE:
        return OFFLINE
    return pool if pool in (ERROR, DEGRADED) else ONLINE


def loadbalancer_status(
    admin_state_up: bool, listeners: Iterable[OperatingStatus]
) -> OperatingStatus:
    if not admin_state_up:
        return OFFLINE
    serving = [status for status in listeners if status is not OFFLINE]
    if serving and all(status is ERROR for status in serving):
        return ERROR
    return DEGRADED if any(status in (ERROR, DEGRADED) for status in serving) else ONLINE


class StaleReport(Exception):
    """A newer report of the device was applied meanwhile: roll this one back."""


async def record_report(session: AsyncSession, report: StatusReport, received_at: datetime) -> bool:
    """Apply ``report``, received at ``received_at``; False when it is stale, from the future,
    or of an unknown device.

    The device row is updated last, as the fence: every writer that locks
    both takes the load balancer first.
    """
    if report.reported_at > received_at + MAX_CLOCK_SKEW:
        log.warning(
            "ignoring a status report from the future", extra={"device_id": report.device_id}
        )
        return False
    last = await session.execute(
        select(Device.status_reported_at).where(Device.id == report.device_id)
    )
    row = last.one_or_none()
    if row is None or (row.status_reported_at and row.status_reported_at >= received_at):
        return False
    hosted = await _rows(
        session, LoadBalancer, LoadBalancer.device_id == report.device_id, key_share=True
    )
    if report.reachable:
        reported = {lb: status for lb, status in report.loadbalancers.items() if lb in hosted}
        await _record_statuses(session, hosted, reported)
        await _record_stats(session, reported, received_at)
    else:
        await _set_statuses(session, LoadBalancer, hosted, dict.fromkeys(hosted, OFFLINE))
    fenced = await session.scalar(
        update(Device)
        .where(
            Device.id == report.device_id,
            or_(
                Device.status_reported_at.is_(None),
                Device.status_reported_at < received_at,
            ),
        )
        .values(
            status_reported_at=received_at,
            operating_status=(ONLINE if report.reachable else OFFLINE).value,
            updated_at=Device.updated_at,
        )
        .returning(Device.id)
    )
    if fenced is None:
        raise StaleReport(report.device_id)
    return True


async def _record_statuses(
    session: AsyncSession,
    hosted: Mapping[UUID, Any],
    reported: Mapping[UUID, LoadBalancerStatus],
) -> None:
    ids = [lb for lb, status in reported.items() if _says_health(status)]
    if not ids:
        return
    listeners = await _rows(session, Listener, Listener.loadbalancer_id.in_(ids))
    pools = await _rows(session, Pool, Pool.loadbalancer_id.in_(ids))
    members = await _rows(session, Member, Member.loadbalancer_id.in_(ids))
    shown_members = {m: s for lb in ids for m, s in reported[lb].members.items()}
    shown_listeners = {
        lst: s.operating_status for lb in ids for lst, s in reported[lb].listeners.items()
    }

    member_statuses = {
        member_id: (
            OFFLINE
            if not row.admin_state_up
            else shown_members.get(member_id, OperatingStatus(row.operating_status))
        )
        for member_id, row in members.items()
    }
    by_pool: dict[UUID, list[OperatingStatus]] = {}
    for member_id, row in members.items():
        by_pool.setdefault(row.pool_id, []).append(member_statuses[member_id])
    pool_statuses = {
        pool_id: pool_status(row.admin_state_up, by_pool.get(pool_id, []))
        for pool_id, row in pools.items()
    }
    listener_statuses = {}
    for listener_id, row in listeners.items():
        given = reported[row.loadbalancer_id].operating_status
        frontend = OFFLINE if given is OFFLINE else shown_listeners.get(listener_id)
        listener_statuses[listener_id] = listener_status(
            row.admin_state_up, frontend, pool_statuses.get(row.default_pool_id)
        )
    lb_statuses = {}
    for lb in ids:
        given = reported[lb].operating_status
        serving = [
            s for lst, s in listener_statuses.items() if listeners[lst].loadbalancer_id == lb
        ]
        lb_statuses[lb] = given or loadbalancer_status(hosted[lb].admin_state_up, serving)

    await _set_statuses(session, LoadBalancer, hosted, lb_statuses)
    await _set_statuses(session, Listener, listeners, listener_statuses)
    await _set_statuses(session, Pool, pools, pool_statuses)
    await _set_statuses(session, Member, members, member_statuses)


def _says_health(status: LoadBalancerStatus) -> bool:
    """Drivers without health checks send counters only."""
    return bool(status.listeners or status.members or status.operating_status)


async def _rows(
    session: AsyncSession, model: type[TreeObject], where: Any, *, key_share: bool = False
) -> dict[UUID, Any]:
    """The columns a rollup needs of every object of ``model`` matching ``where``, by id."""
    columns = [model.id, model.admin_state_up, model.operating_status, model.deleting]
    columns += [
        getattr(model, name)
        for name in ("pool_id", "loadbalancer_id", "default_pool_id")
        if hasattr(model, name)
    ]
    query = select(*columns).where(where).order_by(model.id)
    if key_share:
        query = query.with_for_update(key_share=True)
    rows = await session.execute(query)
    return {row.id: row for row in rows}


async def _set_statuses(
    session: AsyncSession,
    model: type[TreeObject],
    rows: Mapping[UUID, Any],
    statuses: Mapping[UUID, OperatingStatus],
) -> None:
    changed = [
        {"object_id": object_id, "status": status.value}
        for object_id, status in sorted(statuses.items())
        if not rows[object_id].deleting and rows[object_id].operating_status != status.value
    ]
    if not changed:
        return
    table = model.__table__  # type: ignore[attr-defined]
    await session.execute(
        update(table)
        .where(table.c.id == bindparam("object_id"))
        .values(operating_status=bindparam("status"), updated_at=table.c.updated_at),
        changed,
    )


async def _record_stats(
    session: AsyncSession, reported: Mapping[UUID, LoadBalancerStatus], reported_at: datetime
) -> None:
    lb_rows = [
        {"loadbalancer_id": lb, **_stats_values(status.epoch, status.counters, reported_at)}
        for lb, status in reported.items()
    ]
    await _accumulate(session, LoadBalancerStats, "loadbalancer_id", lb_rows)
    listeners = {lst for status in reported.values() for lst in status.listeners}
    if not listeners:
        return
    known = await _rows(session, Listener, Listener.id.in_(listeners))
    listener_rows = [
        {
            "listener_id": lst,
            "loadbalancer_id": lb,
            **_stats_values(status.epoch, shown.counters, reported_at),
        }
        for lb, status in reported.items()
        for lst, shown in status.listeners.items()
        if lst in known and known[lst].loadbalancer_id == lb
    ]
    await _accumulate(session, ListenerStats, "listener_id", listener_rows)


def _stats_values(epoch: str, counters: Counters, reported_at: datetime) -> dict[str, object]:
    values: dict[str, object] = {
        "epoch": epoch,
        "reported_at": reported_at,
        "active_connections": counters.active_connections,
    }
    for name in CUMULATIVE:
        values[name] = values[f"seen_{name}"] = getattr(counters, name)
    return values


async def _accumulate(
    session: AsyncSession, model: type[StatsRow], key: str, rows: list[dict[str, object]]
) -> None:
    """Add what each row's counters grew by since the last report of the same epoch.

    A new epoch (the device started a new process) counts from zero, so its
    values are added whole; so are counters that went down within an epoch. The rows
    travel as one array a column (one statement whatever their number, built once).
    """
    if not rows:
        return
    columns = tuple(rows[0])
    table = model.__table__  # type: ignore[attr-defined]
    connection = await session.connection()
    await connection.execute(
        _accumulating(table, key, columns), {name: [row[name] for row in rows] for name in columns}
    )


@cache
def _accumulating(table: Table, key: str, columns: tuple[str, ...]) -> Insert:
    """The upsert of :func:`_accumulate`: each of ``columns`` bound as an array of its values."""
    arrays = [bindparam(name, type_=ARRAY(table.c[name].type)) for name in columns]
    given = func.unnest(*arrays).table_valued(*columns).render_derived(name="given")
    statement = insert(table).from_select(columns, select(*(given.c[name] for name in columns)))
    new = statement.excluded
    grown = {
        name: table.c[name]
        + case(
            (
                and_(
                    table.c.epoch == new.epoch,
                    new[f"seen_{name}"] >= table.c[f"seen_{name}"],
                ),
                new[f"seen_{name}"] - table.c[f"seen_{name}"],
            ),
            else_=new[f"seen_{name}"],
        )
        for name in CUMULATIVE
    }
    return statement.on_conflict_do_update(
        index_elements=[table.c[key]],
        set_={
            **grown,
            **{f"seen_{name}": new[f"seen_{name}"] for name in CUMULATIVE},
            "epoch": new.epoch,
            "active_connections": new.active_connections,
            "reported_at": new.reported_at,
        },
        where=table.c.reported_at < new.reported_at,
    )
