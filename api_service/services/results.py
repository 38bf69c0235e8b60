"""Applying an agent's result: the status transitions of docs/status-rules.md, by generation."""

import hmac
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import Executable, Row, Select, String, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.models import LoadBalancer, Operation
from api_service.db.notifications import settled_notice
from api_service.services.scheduling import release_place
from api_service.services.tokens import digest
from api_service.services.tree import apply_failure, apply_success, load_tree
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

    Locks the load balancer before the operation, as every writer does. The operation is
    read and written as a plain row (one ``UPDATE``, together with the notification when the
    tree settles): only the tree goes through the session.
    """
    lb = await session.scalar(_locked_loadbalancer(), {"id": result.loadbalancer_id})
    connection = await session.connection()
    operation = (await connection.execute(_locked_operation(), {"id": result.op_id})).first()
    if operation is None or not _matches(operation, result):
        return Applied(Verdict.UNKNOWN, None)
    if OperationStatus(operation.status).is_final and not _heals(operation, result, lb):
        return Applied(Verdict.DUPLICATE, _finished(operation, OperationStatus(operation.status)))

    recorded = _recorded(result)
    if lb is None or lb.generation != result.generation:
        status = OperationStatus.SUPERSEDED
        await connection.execute(
            _finishing(settles=False), _finishing_params(operation, status, recorded)
        )
        return Applied(Verdict.STALE, _finished(operation, status))

    tree = await load_tree(session, lb)
    if result.outcome is Outcome.ERROR:
        status = OperationStatus.FAILED
        apply_failure(
            tree,
            result.generation,
            f"{operation.action} failed on the device: {recorded['error']}",
        )
    else:
        status = OperationStatus.SUCCEEDED
        if operation.command_action == CommandAction.DELETE:
            await session.delete(lb)
            await release_place(session, lb.device_id)
        else:
            recorded |= {"error": None, "error_detail": None}
            for removed in apply_success(tree):
                await session.delete(removed)
    await connection.execute(
        _finishing(settles=True),
        {**_finishing_params(operation, status, recorded), "settled_id": str(lb.id)},
    )
    return Applied(Verdict.APPLIED, _finished(operation, status))


@cache
def _locked_loadbalancer() -> Select[LoadBalancer]:
    """The load balancer bound as ``id``, locked; built once, as every result runs it."""
    return select(LoadBalancer).where(LoadBalancer.id == bindparam("id")).with_for_update()


@cache
def _locked_operation() -> Select[Any]:
    """The operation row bound as ``id``, locked; built once."""
    return (
        select(*Operation.__table__.columns)
        .where(Operation.id == bindparam("id"))
        .with_for_update()
    )


_RECORDED = ("agent_id", "started_at", "finished_at", "error", "error_detail")


@cache
def _finishing(*, settles: bool) -> Executable:
    """The operation bound as ``op_id`` gets ``new_status`` and the :data:`_RECORDED` values
    (bound as ``new_<name>``); when the tree ``settles``, in one statement with the
    notification for the load balancer bound as ``settled_id``. Built once."""
    finishing = (
        update(Operation)
        .where(Operation.id == bindparam("op_id"))
        .values(
            {name: bindparam(f"new_{name}") for name in ("status", *_RECORDED)}
            | {"completed_at": func.now()}
        )
    )
    if not settles:
        return finishing
    return select(settled_notice(bindparam("settled_id", type_=String()))).add_cte(
        finishing.cte("finished")
    )


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


def _heals(operation: Row[Any], result: Result, lb: LoadBalancer | None) -> bool:
    """A success after a failure of the current generation: the agent repaired the device.

    (It applied the command again once the device answered; see ``agent_service.status``.)
    """
    return (
        operation.status == OperationStatus.FAILED
        and result.outcome is Outcome.ACTIVE
        and lb is not None
        and lb.generation == result.generation
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
