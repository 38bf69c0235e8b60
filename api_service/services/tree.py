"""A load balancer's tree of objects, its spec, and the status transitions of docs/status-rules.md.

The load balancer row is the lock of its whole tree: every writer locks it
first, so a tree is only ever changed by one transaction at a time.
"""

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import (
    CTE,
    ColumnElement,
    CompoundSelect,
    Select,
    bindparam,
    case,
    delete,
    literal,
    not_,
    null,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.models import (
    Device,
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancer,
    Member,
    Pool,
    TreeObject,
)
from shared.messages import (
    HealthMonitorSpec,
    L7PolicySpec,
    L7RuleSpec,
    ListenerSpec,
    LoadBalancerSpec,
    MemberSpec,
    PoolSpec,
    SessionPersistenceSpec,
)
from shared.status import PENDING_STATUSES, OperatingStatus, ProvisioningStatus

T = TypeVar("T", bound=TreeObject)


@dataclass
class Tree:
    lb: LoadBalancer
    listeners: list[Listener] = field(default_factory=list)
    pools: list[Pool] = field(default_factory=list)
    members: list[Member] = field(default_factory=list)
    healthmonitors: list[HealthMonitor] = field(default_factory=list)
    l7policies: list[L7Policy] = field(default_factory=list)
    l7rules: list[L7Rule] = field(default_factory=list)

    def children(self) -> Iterator[TreeObject]:
        """Every object under the load balancer, leaves first."""
        yield from self.members
        yield from self.healthmonitors
        yield from self.l7rules
        yield from self.l7policies
        yield from self.listeners
        yield from self.pools

    def objects(self) -> Iterator[TreeObject]:
        yield from self.children()
        yield self.lb

    def live_children(self) -> list[TreeObject]:
        return [child for child in self.children() if not child.deleting]

    def pool(self, pool_id: UUID) -> Pool | None:
        return next((p for p in self.pools if p.id == pool_id), None)

    def listeners_of(self, pool_id: UUID) -> list[Listener]:
        return [listener for listener in self.listeners if listener.default_pool_id == pool_id]

    def members_of(self, pool_id: UUID) -> list[Member]:
        return [member for member in self.members if member.pool_id == pool_id]

    def healthmonitor_of(self, pool_id: UUID) -> HealthMonitor | None:
        return next((hm for hm in self.healthmonitors if hm.pool_id == pool_id), None)

    def l7policies_of(self, listener_id: UUID) -> list[L7Policy]:
        """The listener's policies in position order."""
        found = [policy for policy in self.l7policies if policy.listener_id == listener_id]
        return sorted(found, key=lambda policy: policy.position)

    def l7rules_of(self, policy_id: UUID) -> list[L7Rule]:
        return [rule for rule in self.l7rules if rule.l7policy_id == policy_id]


async def load_tree(
    session: AsyncSession, lb: LoadBalancer, present: Collection[str] | None = None
) -> Tree:
    """The load balancer's objects, each kind in creation order: one query says which child
    tables hold any of its objects (unless ``present`` names them, as
    :func:`lock_loadbalancer` read them), then one query reads each of those (none for a bare
    load balancer)."""
    if present is None:
        present = set(await session.scalars(_present(), {"loadbalancer_id": lb.id}))

    async def rows(model: type[T]) -> list[T]:
        if model.__name__ not in present:
            return []
        query = _of_loadbalancer()[model]
        return list(await session.scalars(query, {"loadbalancer_id": lb.id}))

    return Tree(
        lb=lb,
        listeners=await rows(Listener),
        pools=await rows(Pool),
        members=await rows(Member),
        healthmonitors=await rows(HealthMonitor),
        l7policies=await rows(L7Policy),
        l7rules=await rows(L7Rule),
    )


_CHILDREN = (Listener, Pool, Member, HealthMonitor, L7Policy, L7Rule)


@dataclass(frozen=True)
class Locked:
    """A load balancer locked as the lock of its tree, with what the same statement read."""

    lb: LoadBalancer
    device: Device | None
    """Its device (with the provider's announcement), read without a lock; None when the
    lock waited for a transaction that moved the load balancer to another device (the
    re-checked outer join no longer matches the device row read before the wait)."""
    kinds: set[str]
    """The kinds of child it has (for :func:`load_tree`)."""


async def lock_loadbalancer(session: AsyncSession, loadbalancer_id: UUID) -> Locked | None:
    """The load balancer (None if there is none) locked ``FOR UPDATE``, the lock of its whole
    tree, with its device and the kinds of child it has: one statement.

    When the lock had to wait, the kinds are as they were before the wait (PostgreSQL
    re-reads only the locked row): they can be trusted only by a caller that refuses a
    load balancer left ``PENDING_*``, as every change does, since every transaction that
    adds children leaves it so (see ``changes.lock_mutable``)."""
    row = (await session.execute(_locked_with_kinds(), {"id": loadbalancer_id})).first()
    if row is None:
        return None
    lb, device, *has = row
    return Locked(
        lb=lb,
        device=device,
        kinds={model.__name__ for model, any_ in zip(_CHILDREN, has, strict=True) if any_},
    )


@cache
def _present() -> CompoundSelect[str]:
    """The kinds of child (model names) the load balancer bound as ``loadbalancer_id`` has:
    an index probe each; built once, as every failed result reads a tree."""
    return union_all(
        *(
            select(literal(model.__name__)).where(
                select(model.id)
                .where(model.loadbalancer_id == bindparam("loadbalancer_id"))
                .exists()
            )
            for model in _CHILDREN
        )
    )


@cache
def _locked_with_kinds() -> Select[LoadBalancer, Device | None, *tuple[bool, ...]]:
    """The load balancer bound as ``id``, locked, its device (outer-joined: after a lock wait
    the re-checked join may find the device row read before it no longer matches), and for
    each of :data:`_CHILDREN` whether it has any (an index probe each); built once, as every
    change runs it."""
    return (
        select(
            LoadBalancer,
            Device,
            *(
                select(model.id).where(model.loadbalancer_id == LoadBalancer.id).exists()
                for model in _CHILDREN
            ),
        )
        .outerjoin(Device, Device.id == LoadBalancer.device_id)
        .where(LoadBalancer.id == bindparam("id"))
        .with_for_update(of=LoadBalancer)
    )


@cache
def _of_loadbalancer() -> dict[type[TreeObject], Select[Any]]:
    """Each child table's objects of the load balancer bound as ``loadbalancer_id``; built
    once, as every change and result reads a tree."""
    return {
        model: select(model)
        .where(model.loadbalancer_id == bindparam("loadbalancer_id"))
        .order_by(model.created_at, model.id)
        for model in _CHILDREN
    }


def mark(obj: TreeObject, status: ProvisioningStatus, generation: int) -> None:
    """``obj`` itself changes at ``generation``."""
    obj.provisioning_status = status.value
    obj.changed_generation = generation
    obj.status_reason = None
    if status is ProvisioningStatus.PENDING_DELETE:
        obj.deleting = True


def mark_parents(tree: Tree, obj: TreeObject) -> None:
    """The load balancer and the listener/pool between it and ``obj`` go to PENDING_UPDATE."""
    parents: list[TreeObject] = [tree.lb]
    if isinstance(obj, Member | HealthMonitor):
        parents.extend(p for p in tree.pools if p.id == obj.pool_id)
        parents.extend(tree.listeners_of(obj.pool_id))
    elif isinstance(obj, Pool):
        parents.extend(tree.listeners_of(obj.id))
    elif isinstance(obj, L7Rule):
        policies = [p for p in tree.l7policies if p.id == obj.l7policy_id]
        parents.extend(policies)
        parents.extend(lst for lst in tree.listeners for p in policies if lst.id == p.listener_id)
    elif isinstance(obj, L7Policy):
        parents.extend(lst for lst in tree.listeners if lst.id == obj.listener_id)
    for parent in parents:
        if parent is not obj and parent.provisioning_status not in PENDING_STATUSES:
            parent.provisioning_status = ProvisioningStatus.PENDING_UPDATE.value


@cache
def settling() -> tuple[CTE, ...]:
    """The device holds the spec of the load balancer bound as ``tree_id``: its deleted objects
    go and every other object of its tree is ACTIVE, as data-modifying CTEs for one statement
    (PostgreSQL runs each to completion whether the statement reads it or not). Built once,
    as every successful result runs it. (Not bound as ``loadbalancer_id``: an UPDATE of a
    child table takes that name for the column's own SET parameter.)

    A level-triggered apply provisions the whole tree, so objects left in ERROR by an earlier
    failure are ACTIVE again too. Disabled objects are OFFLINE; an object that was OFFLINE is
    ONLINE until the device's next status report says otherwise; any other operating status
    is the last one reported. Only rows that change are written: the others keep their
    ``updated_at``, hence their ETag.
    """
    removed = [
        delete(model)
        .where(model.loadbalancer_id == bindparam("tree_id"), model.deleting)
        .cte(f"removed_{model.__name__.lower()}")
        for model in _CHILDREN
    ]
    settled = [
        _settled(model, model.loadbalancer_id == bindparam("tree_id")) for model in _CHILDREN
    ]
    lb = _settled(LoadBalancer, LoadBalancer.id == bindparam("tree_id"))
    return (*removed, *settled, lb)


def _settled(model: type[TreeObject], of_tree: ColumnElement[bool]) -> CTE:
    """The UPDATE of ``model``'s rows ``of_tree`` that are not deleting, where it changes any."""
    operating = case(
        (not_(model.admin_state_up), OperatingStatus.OFFLINE.value),
        (model.operating_status == OperatingStatus.OFFLINE.value, OperatingStatus.ONLINE.value),
        else_=model.operating_status,
    )
    changes = or_(
        model.provisioning_status != ProvisioningStatus.ACTIVE.value,
        model.status_reason.is_not(None),
        model.operating_status != operating,
    )
    return (
        update(model)
        .where(of_tree, not_(model.deleting), changes)
        .values(
            provisioning_status=ProvisioningStatus.ACTIVE.value,
            status_reason=null(),
            operating_status=operating,
        )
        .cte(f"settled_{model.__name__.lower()}")
    )


def apply_failure(tree: Tree, generation: int, reason: str) -> None:
    """What changed at ``generation`` is ERROR; parents that only waited for it are ACTIVE."""
    for obj in tree.objects():
        if obj.provisioning_status not in PENDING_STATUSES:
            continue
        if obj.changed_generation == generation:
            obj.provisioning_status = ProvisioningStatus.ERROR.value
            obj.status_reason = reason
        else:
            obj.provisioning_status = ProvisioningStatus.ACTIVE.value


def apply_timeout(tree: Tree, reason: str) -> None:
    for obj in tree.objects():
        if obj.provisioning_status in PENDING_STATUSES:
            obj.provisioning_status = ProvisioningStatus.ERROR.value
            obj.status_reason = reason


def build_spec(tree: Tree) -> LoadBalancerSpec:
    lb = tree.lb
    pools = [pool for pool in tree.pools if not pool.deleting]
    live_pool_ids = {pool.id for pool in pools}
    return LoadBalancerSpec(
        id=lb.id,
        project_id=lb.project_id,
        admin_state_up=lb.admin_state_up,
        vip_address=str(lb.vip_address),
        generation=lb.generation,
        listeners=[
            _listener_spec(tree, listener, live_pool_ids)
            for listener in tree.listeners
            if not listener.deleting
        ],
        pools=[_pool_spec(tree, pool) for pool in pools],
    )


def _listener_spec(tree: Tree, listener: Listener, live_pool_ids: set[UUID]) -> ListenerSpec:
    return ListenerSpec(
        id=listener.id,
        protocol=listener.protocol,
        protocol_port=listener.protocol_port,
        admin_state_up=listener.admin_state_up,
        connection_limit=listener.connection_limit,
        default_pool_id=(
            listener.default_pool_id if listener.default_pool_id in live_pool_ids else None
        ),
        timeout_client_data=listener.timeout_client_data,
        timeout_member_connect=listener.timeout_member_connect,
        timeout_member_data=listener.timeout_member_data,
        timeout_tcp_inspect=listener.timeout_tcp_inspect,
        insert_headers=dict(listener.insert_headers),
        allowed_cidrs=list(listener.allowed_cidrs),
        l7policies=[
            _l7policy_spec(tree, policy, live_pool_ids)
            for policy in tree.l7policies_of(listener.id)
            if not policy.deleting
        ],
    )


def _l7policy_spec(tree: Tree, policy: L7Policy, live_pool_ids: set[UUID]) -> L7PolicySpec:
    return L7PolicySpec(
        id=policy.id,
        action=policy.action,
        position=policy.position,
        admin_state_up=policy.admin_state_up,
        redirect_pool_id=(
            policy.redirect_pool_id if policy.redirect_pool_id in live_pool_ids else None
        ),
        redirect_url=policy.redirect_url,
        redirect_prefix=policy.redirect_prefix,
        redirect_http_code=policy.redirect_http_code,
        rules=[
            L7RuleSpec(
                id=rule.id,
                type=rule.type,
                compare_type=rule.compare_type,
                key=rule.key,
                value=rule.value,
                invert=rule.invert,
                admin_state_up=rule.admin_state_up,
            )
            for rule in tree.l7rules_of(policy.id)
            if not rule.deleting
        ],
    )


def _pool_spec(tree: Tree, pool: Pool) -> PoolSpec:
    persistence = pool.session_persistence
    healthmonitor = tree.healthmonitor_of(pool.id)
    return PoolSpec(
        id=pool.id,
        protocol=pool.protocol,
        lb_algorithm=pool.lb_algorithm,
        admin_state_up=pool.admin_state_up,
        session_persistence=(
            SessionPersistenceSpec(
                type=str(persistence["type"]),
                cookie_name=_optional_str(persistence.get("cookie_name")),
            )
            if persistence
            else None
        ),
        members=[
            MemberSpec(
                id=member.id,
                address=str(member.address),
                protocol_port=member.protocol_port,
                weight=member.weight,
                backup=member.backup,
                admin_state_up=member.admin_state_up,
                monitor_address=_optional_str(member.monitor_address),
                monitor_port=member.monitor_port,
            )
            for member in tree.members_of(pool.id)
            if not member.deleting
        ],
        healthmonitor=(
            HealthMonitorSpec(
                id=healthmonitor.id,
                type=healthmonitor.type,
                delay=healthmonitor.delay,
                timeout=healthmonitor.timeout,
                max_retries=healthmonitor.max_retries,
                max_retries_down=healthmonitor.max_retries_down,
                admin_state_up=healthmonitor.admin_state_up,
                http_method=healthmonitor.http_method,
                url_path=healthmonitor.url_path,
                expected_codes=healthmonitor.expected_codes,
            )
            if healthmonitor is not None and not healthmonitor.deleting
            else None
        ),
    )


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)
