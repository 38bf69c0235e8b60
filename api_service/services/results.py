"""Applying an agent's result: the status transitions of docs/status-rules.md, by generation."""

import hmac
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from typing import Any

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.models import LoadBalancer, Operation
from api_service.db.notifications import notify_settled
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
class Applied:
    verdict: Verdict
    operation: Operation | None
    """As the result left it (None for an unknown one)."""


async def apply_result(session: AsyncSession, result: Result) -> Applied:
    """Record ``result`` on its operation and, if it is for the current generation, on the tree.

    Locks the load balancer before the operation, as every writer does.
    """
    lb = await session.scalar(_locked(LoadBalancer), {"id": result.loadbalancer_id})
    operation = await session.scalar(_locked(Operation), {"id": result.op_id})
    if operation is None or not _matches(operation, result):
        return Applied(Verdict.UNKNOWN, None)
    if OperationStatus(operation.status).is_final and not _heals(operation, result, lb):
        return Applied(Verdict.DUPLICATE, operation)

    if lb is None or lb.generation != result.generation:
        _record(operation, result)
        operation.status = OperationStatus.SUPERSEDED.value
        return Applied(Verdict.STALE, operation)

    tree = await load_tree(session, lb)  # read before anything changes: nothing to flush yet
    _record(operation, result)
    if result.outcome is Outcome.ERROR:
        operation.status = OperationStatus.FAILED.value
        apply_failure(
            tree, result.generation, f"{operation.action} failed on the device: {operation.error}"
        )
    elif operation.command_action == CommandAction.DELETE:
        operation.status = OperationStatus.SUCCEEDED.value
        await session.delete(lb)
        await release_place(session, lb.device_id)
    else:
        operation.status = OperationStatus.SUCCEEDED.value
        operation.error = operation.error_detail = None
        for removed in apply_success(tree):
            await session.delete(removed)
    await notify_settled(session, lb.id)
    return Applied(Verdict.APPLIED, operation)


@cache
def _locked(model: type[LoadBalancer] | type[Operation]) -> Select[Any]:
    """The row of ``model`` bound as ``id``, locked; built once, as every result runs it."""
    return select(model).where(model.id == bindparam("id")).with_for_update()


def _record(operation: Operation, result: Result) -> None:
    """What the agent says of its run, whatever becomes of it."""
    operation.agent_id = result.agent_id
    operation.started_at = result.started_at
    operation.finished_at = result.finished_at
    operation.completed_at = func.now()
    operation.error = None if result.error is None else for_project(result.error)
    operation.error_detail = result.detail


def _heals(operation: Operation, result: Result, lb: LoadBalancer | None) -> bool:
    """A success after a failure of the current generation: the agent repaired the device.

    (It applied the command again once the device answered; see ``agent_service.status``.)
    """
    return (
        operation.status == OperationStatus.FAILED
        and result.outcome is Outcome.ACTIVE
        and lb is not None
        and lb.generation == result.generation
    )


def _matches(operation: Operation, result: Result) -> bool:
    expected = operation.result_secret_hash
    return (
        operation.loadbalancer_id == result.loadbalancer_id
        and operation.device_id == result.device_id
        and operation.generation == result.generation
        and expected is not None
        and hmac.compare_digest(expected, digest(result.result_secret.get_secret_value()))
    )
