"""Every asynchronous change: lock the tree, edit it, bump the generation, record the command.

One transaction writes the edited objects, the operation row and the outbox
row holding the whole spec of the tree (level-triggered, docs/contract.md). After the
commit the command is published (or left to the outbox relay).
"""

import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from uuid import UUID, uuid4

from pydantic import SecretStr
from sqlalchemy import Select, bindparam, func, insert, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.models import (
    Base,
    Device,
    LoadBalancer,
    Operation,
    OutboxRow,
    TreeObject,
    VipPort,
)
from api_service.errors import Conflict, NotFound, StaleVersion
from api_service.secret_keys import SecretKeys
from api_service.services.addresses import MemberAddresses
from api_service.services.devices import device_spec
from api_service.services.networks import check_member_subnets
from api_service.services.providers import changed_ids, require_supported
from api_service.services.quotas import QuotaService, kind_of, with_quota_row
from api_service.services.tokens import digest
from api_service.services.tree import (
    Locked,
    Tree,
    build_spec,
    load_tree,
    lock_loadbalancer,
    mark_parents,
)
from shared.logging import REQUEST_ID
from shared.messages import Command
from shared.status import MUTABLE_STATUSES, CommandAction, OperationStatus, ProvisioningStatus
from shared.topology import shard_for
from shared.tracing import current_context

Edit = Callable[[AsyncSession, Tree, int], Awaitable[TreeObject]]
"""Changes the locked tree for the given new generation; returns the object the change is about."""


@dataclass(frozen=True)
class NewCommand:
    """A command just committed with its outbox row: what the request path publishes without
    reading the row back."""

    outbox_id: int
    op_id: UUID
    loadbalancer_id: UUID
    routing_key: str
    payload: str
    """The command's JSON, unsealed."""
    head: bool
    """No older command of its load balancer was unpublished when this one was written (with
    the load balancer locked, or new): it may go to the broker at once, ahead of the relay."""


Publish = Callable[[NewCommand], Awaitable[None]]


@dataclass(frozen=True)
class Accepted:
    """A committed change: the object it is about and the operation clients can follow."""

    target: TreeObject
    loadbalancer: LoadBalancer
    operation: Operation
    command: NewCommand
    created: Sequence[object] | None = None
    """Every object related to ``target``, when the change created them all with it (a load
    balancer's create): its answer then lists them without reading them back."""


@dataclass(frozen=True)
class Changes:
    sessions: SessionFactory
    publish: Publish
    """Called with each command after the commit that wrote it."""
    quotas: QuotaService
    keys: SecretKeys
    shards: int
    member_addresses: MemberAddresses

    async def change(
        self,
        ctx: RequestContext,
        loadbalancer_id: UUID,
        edit: Edit,
        *,
        action: str,
        target_type: str,
        command_action: CommandAction = CommandAction.APPLY,
    ) -> Accepted:
        async with self.sessions.begin() as session:
            locked = await lock_mutable(session, ctx, loadbalancer_id)
            lb = locked.lb
            if lb.deleting and command_action is not CommandAction.DELETE:
                raise Conflict(f"Load balancer {loadbalancer_id} is being deleted.")
            tree = await load_tree(session, lb, locked.kinds)
            generation = lb.generation + 1
            target = await edit(session, tree, generation)
            add_new(session, tree)
            lb.generation = generation
            mark_parents(tree, target)
            device = locked.device
            if device is None or device.id != lb.device_id:  # moved by a failover's edit
                device = await session.get_one(Device, lb.device_id)
            operation, command = await self.record(
                session,
                ctx,
                tree,
                device,
                action=action,
                target_type=target_type,
                target_id=target.id,
                command_action=command_action,
            )
        await self.publish(command)
        return Accepted(target=target, loadbalancer=lb, operation=operation, command=command)

    async def record(
        self,
        session: AsyncSession,
        ctx: RequestContext,
        tree: Tree,
        device: Device,
        *,
        action: str,
        target_type: str,
        target_id: UUID,
        command_action: CommandAction,
        written: Sequence[LoadBalancer | VipPort] = (),
    ) -> tuple[Operation, NewCommand]:
        """Write the operation and the command for the tree at its (already bumped) generation
        on ``device`` (the load balancer's), once its new and changed members are found to
        have addresses they may have and its new and changed objects to ask only for options
        the provider supports; check the project's quotas last, so that a lock they take is
        held only until the commit.

        ``written`` are new objects, not in the session, that the same statement inserts
        (a load balancer's create: the load balancer and its new VIP port): they get their
        timestamps from it. The session's changes are flushed after it (nothing before it
        autoflushes), so they may refer to those."""
        lb = tree.lb
        with session.no_autoflush:
            await self.member_addresses.check(session, tree)
            await check_member_subnets(session, tree)
        spec = build_spec(tree)
        require_supported(device, spec, changed_ids(tree))
        result_secret = secrets.token_urlsafe(32)
        values = {
            "id": uuid4(),
            "project_id": lb.project_id,
            "loadbalancer_id": lb.id,
            "device_id": device.id,
            "action": action,
            "command_action": command_action.value,
            "target_type": target_type,
            "target_id": target_id,
            "generation": lb.generation,
            "status": OperationStatus.PENDING.value,
            "requested_by": ctx.token_name,
            "requested_by_token_id": ctx.token_id,
            "result_secret_hash": digest(result_secret),
        }
        operation = Operation(**values)
        command = Command(
            op_id=operation.id,
            device_id=device.id,
            loadbalancer_id=lb.id,
            generation=lb.generation,
            action=command_action,
            driver=device.driver,
            device=device_spec(device, self.keys),
            spec=spec,
            issued_at=datetime.now(UTC),
            request_id=REQUEST_ID.get(),
            trace_context=current_context(),
            result_secret=SecretStr(result_secret),
        )
        rows = [(type(obj), _columns(obj)) for obj in written]
        routing_key = str(shard_for(device.id, self.shards))
        payload = command.model_dump_json()
        connection = await session.connection()
        quota = (
            await connection.execute(
                _operation_with_command(
                    tuple(values), tuple((model, tuple(row)) for model, row in rows)
                ),
                {
                    **{f"operation_{name}": value for name, value in values.items()},
                    **{
                        f"{model.__tablename__}_{name}": value
                        for model, row in rows
                        for name, value in row.items()
                    },
                    "routing_key": routing_key,
                    "payload": self.keys.seal(payload),
                    "project_id": lb.project_id,
                },
            )
        ).one()
        for obj in written:
            obj.created_at = obj.updated_at = quota.written_at
        await session.flush()
        await self.quotas.enforce(session, lb.project_id, created(tree, lb.generation), quota)
        return operation, NewCommand(
            outbox_id=quota.outbox_id,
            op_id=operation.id,
            loadbalancer_id=lb.id,
            routing_key=routing_key,
            payload=payload,
            head=not quota.behind,
        )


@cache
def _operation_with_command(
    fields: tuple[str, ...], written: tuple[tuple[type[Base], tuple[str, ...]], ...]
) -> Select[Any]:
    """The operation row and its outbox row written, each ``written`` row inserted, and the
    project's quota row read, in one statement (bound: ``operation_<field>`` for each of
    ``fields``, ``<table>_<column>`` for each written column, ``routing_key``, ``payload``,
    ``project_id``). Its one row is the quota row (NULLs when the project has none),
    ``written_at``, the transaction's time, which every row it wrote has, the ``outbox_id``
    and whether the command is ``behind`` an unpublished one of its load balancer (the
    statement's snapshot does not hold its own rows). Built once for each shape, since every
    change runs it."""
    operation = (
        insert(Operation)
        .values({name: bindparam(f"operation_{name}") for name in fields})
        .returning(Operation.created_at.label("written_at"))
        .cte("operation")
    )
    inserts = [
        insert(model)
        .values({name: bindparam(f"{model.__tablename__}_{name}") for name in names})
        .cte(f"written_{model.__tablename__}")
        for model, names in written
    ]
    outbox = (
        insert(OutboxRow)
        .values(
            op_id=bindparam("operation_id"),
            loadbalancer_id=bindparam("operation_loadbalancer_id"),
            routing_key=bindparam("routing_key"),
            payload=bindparam("payload"),
            attempts=0,
            created_at=func.clock_timestamp(),  # the relay's grace counts from the write
        )
        .returning(OutboxRow.id)
        .cte("command")
    )
    behind = (
        select(OutboxRow.id)
        .where(
            OutboxRow.loadbalancer_id == bindparam("operation_loadbalancer_id"),
            OutboxRow.published_at.is_(None),
        )
        .exists()
    )
    return (
        with_quota_row(operation)
        .add_columns(
            select(outbox.c.id).scalar_subquery().label("outbox_id"), behind.label("behind")
        )
        .add_cte(*inserts)
    )


def _columns(obj: Base) -> dict[str, Any]:
    """The column values set on a new object (the table's defaults fill in the rest)."""
    state = inspect(obj)
    return {
        attr.key: state.dict[attr.key]
        for attr in state.mapper.column_attrs
        if attr.key in state.dict
    }


async def lock_mutable(session: AsyncSession, ctx: RequestContext, loadbalancer_id: UUID) -> Locked:
    """Lock the load balancer row (read with its device and the kinds of child it has);
    refuse while a change is in flight."""
    locked = await lock_loadbalancer(session, loadbalancer_id)
    if locked is None or not ctx.owns(locked.lb.project_id):
        raise NotFound("Load balancer", loadbalancer_id)
    lb = locked.lb
    if lb.provisioning_status not in MUTABLE_STATUSES:
        raise Conflict(
            f"Load balancer {loadbalancer_id} is {lb.provisioning_status}; it accepts changes "
            "again once it is ACTIVE or ERROR (a PENDING_* object becomes ERROR after the "
            "pending timeout)."
        )
    return locked


def require_mutable(obj: TreeObject, kind: str) -> None:
    if obj.deleting:
        raise Conflict(f"{kind} {obj.id} is being deleted; delete it again to retry.")


def require_etag(obj: TreeObject, if_match: str | None) -> None:
    if if_match is not None and if_match.strip() not in ("*", etag(obj)):
        raise StaleVersion(
            f"{type(obj).__name__} {obj.id} changed since that ETag; its ETag is {etag(obj)}."
        )


def etag(obj: TreeObject) -> str:
    return f'"{obj.updated_at.timestamp():.6f}-{obj.provisioning_status}"'


def add_new(session: AsyncSession, tree: Tree) -> None:
    """Add to the session the objects a change added to the tree (before quotas count them)."""
    session.add_all([obj for obj in tree.objects() if obj not in session])


def created(tree: Tree, generation: int) -> Counter[str]:
    """How many objects of each kind the change at ``generation`` adds."""
    return Counter(
        kind_of(obj)
        for obj in tree.objects()
        if obj.provisioning_status == ProvisioningStatus.PENDING_CREATE
        and obj.changed_generation == generation
    )
