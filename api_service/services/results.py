"""Applying an agent's result: the status transitions of docs/status-rules.md, by generation."""

import hmac
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from functools import cache
from typing import Any

from sqlalchemy import (
    Executable,
    Row,
    Select,
    String,
    bindparam,
    delete,
    func,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.models import LoadBalancer, Operation
from api_service.db.notifications import settled_notice
from api_service.services.scheduling import release_place
from api_service.services.tokens import digest
from api_service.services.tree import apply_failure, load_tree, settling
from shared.messages import Result
from shared.redaction import for_project
from shared.status import CommandAction, OperationStatus, Outcome


class Verdict(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"
    UNKNOWN = "unknown"
    """No such operation, or the result does not match it (nor echoes its command's secret):
    the message is not trusted."""


@dataclass(frozen=True)
class Finished:
    """What a result made of its operation."""

    action: str
    status: OperationStatus
    created_at: datetime


@dataclass(frozen=True)
class Applied:
    verdict: Verdict
    operation: Finished | None
    """As the result left it (None for an unknown one)."""


async def apply_result(session: AsyncSession, result: Result) -> Applied:
    """Record ``result`` on its operation and, if it is for the current generation, on the tree.

    Locks the load balancer before the operation, as every writer does, in one statement
    that reads both as one plain row (:func:`_locked`), and a success is one statement: the
    tree settled (:func:`tree.settling`), the operation finished and the waiters notified.
    Only a failure, which must know what changed at the generation, loads the tree into the
    session.
    """
    connection = await session.connection()
    params = {"op_id": result.op_id, "lb_id": result.loadbalancer_id}
    operation = (await connection.execute(_locked(), params)).first()
    if operation is None or not _matches(operation, result):
        return Applied(Verdict.UNKNOWN, None)
    if OperationStatus(operation.status).is_final and not _heals(operation, result):
        return Applied(Verdict.DUPLICATE, _finished(operation, OperationStatus(operation.status)))

    recorded = _recorded(result)
    if operation.lb_generation != result.generation:  # NULL: the load balancer is gone
        status = OperationStatus.SUPERSEDED
        await connection.execute(
            _finishing(settles=None), _finishing_params(operation, status, recorded)
        )
        return Applied(Verdict.STALE, _finished(operation, status))

    if result.outcome is Outcome.ERROR:
        status = OperationStatus.FAILED
        tree = await load_tree(session, await session.get_one(LoadBalancer, operation.lb_id))
        apply_failure(
            tree,
            result.generation,
            f"{operation.action} failed on the device: {recorded['error']}",
        )
        await session.flush()
        settles = Settles.NOTHING
    elif operation.command_action == CommandAction.DELETE:
        status = OperationStatus.SUCCEEDED
        settles = Settles.DELETED
    else:
        status = OperationStatus.SUCCEEDED
        settles = Settles.TREE
        recorded |= {"error": None, "error_detail": None}
    await connection.execute(
        _finishing(settles=settles),
        {
            **_finishing_params(operation, status, recorded),
            "settled_id": str(operation.lb_id),
            "tree_id": operation.lb_id,
        },
    )
    if settles is Settles.DELETED:  # the device last, as every writer locks
        await release_place(session, operation.lb_device_id)
    return Applied(Verdict.APPLIED, _finished(operation, status))


@cache
def _locked() -> Select[Any]:
    """The operation bound as ``op_id`` with, as ``lb_id``, ``lb_generation`` and
    ``lb_device_id``, its load balancer bound as ``lb_id`` (NULLs when it is gone), both
    locked: the load balancer first, by its subquery, which runs before the outer query locks
    the operation row it joined; built once, as every result runs it."""
    lb = (
        select(LoadBalancer.id, LoadBalancer.generation, LoadBalancer.device_id)
        .where(LoadBalancer.id == bindparam("lb_id"))
        .with_for_update()
        .lateral("lb")
    )
    operations = Operation.__table__
    return (
        select(
            *operations.columns,
            lb.c.id.label("lb_id"),
            lb.c.generation.label("lb_generation"),
            lb.c.device_id.label("lb_device_id"),
        )
        .select_from(operations.outerjoin(lb, true()))
        .where(operations.c.id == bindparam("op_id"))
        .with_for_update(of=operations)
    )


class Settles(Enum):
    """What a result for the current generation does besides finishing its operation."""

    NOTHING = "nothing"
    """The tree was changed in the session (a failure)."""
    TREE = "tree"
    """The tree settles (:func:`tree.settling`)."""
    DELETED = "deleted"
    """The load balancer goes, and its whole tree with it (``ON DELETE CASCADE``)."""


_RECORDED = ("agent_id", "started_at", "finished_at", "error", "error_detail")


@cache
def _finishing(*, settles: Settles | None) -> Executable:
    """The operation bound as ``op_id`` gets ``new_status`` and the :data:`_RECORDED` values
    (bound as ``new_<name>``); for a result of the current generation (``settles`` not None),
    in one statement with what it ``settles`` and the notification for the load balancer
    bound as ``settled_id`` (and as ``tree_id``). Built once for each."""
    finishing = (
        update(Operation)
        .where(Operation.id == bindparam("op_id"))
        .values(
            {name: bindparam(f"new_{name}") for name in ("status", *_RECORDED)}
            | {"completed_at": func.now()}
        )
    )
    if settles is None:
        return finishing
    statement = select(settled_notice(bindparam("settled_id", type_=String()))).add_cte(
        finishing.cte("finished")
    )
    if settles is Settles.TREE:
        statement = statement.add_cte(*settling())
    elif settles is Settles.DELETED:
        removed = delete(LoadBalancer).where(LoadBalancer.id == bindparam("tree_id"))
        statement = statement.add_cte(removed.cte("removed"))
    return statement


def _recorded(result: Result) -> dict[str, Any]:
    """What the agent says of its run, whatever becomes of it."""
    return {
        "agent_id": result.agent_id,
        "started_at": result.started_at,
        "finished_at": result.finished_at,
        "error": None if result.error is None else for_project(result.error),
        "error_detail": result.detail,
    }


def _finishing_params(
    operation: Row[Any], status: OperationStatus, recorded: dict[str, Any]
) -> dict[str, Any]:
    values = {"status": status.value, **recorded}
    return {"op_id": operation.id} | {f"new_{name}": value for name, value in values.items()}


def _finished(operation: Row[Any], status: OperationStatus) -> Finished:
    return Finished(operation.action, status, operation.created_at)


def _heals(operation: Row[Any], result: Result) -> bool:
    """A success after a failure of the current generation: the agent repaired the device.

    (It applied the command again once the device answered; see ``agent_service.status``.)
    """
    return (
        operation.status == OperationStatus.FAILED
        and result.outcome is Outcome.ACTIVE
        and operation.lb_generation == result.generation
    )


def _matches(operation: Row[Any], result: Result) -> bool:
    expected = operation.result_secret_hash
    return (
        operation.loadbalancer_id == result.loadbalancer_id
        and operation.device_id == result.device_id
        and operation.generation == result.generation
        and expected is not None
        and hmac.compare_digest(expected, digest(result.result_secret.get_secret_value()))
    )
