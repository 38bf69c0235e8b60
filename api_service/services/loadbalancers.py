"""Load balancer rules: placement, single-call tree create, cascade delete, failover."""

from dataclasses import dataclass, field
from ipaddress import ip_address
from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.models import (
    Device,
    Listener,
    ListenerStats,
    LoadBalancer,
    LoadBalancerStats,
    Operation,
    Pool,
    TreeObject,
)
from api_service.errors import Conflict, Forbidden, Invalid, NoCapacity, NotFound
from api_service.resources.healthmonitors import new_healthmonitor
from api_service.resources.l7policies import new_policy
from api_service.resources.listeners import new_listener, set_default_pool
from api_service.resources.members import MemberKey, new_member
from api_service.resources.pools import new_pool
from api_service.schemas.l7policies import L7Action
from api_service.schemas.loadbalancers import LoadBalancerCreate, PoolInTree
from api_service.services.changes import (
    Accepted,
    Changes,
    require_etag,
)
from api_service.services.definitions import device_group_of, placement_of
from api_service.services.devices import get_device
from api_service.services.networks import place_vip, take_port, vip_request, vip_subnets
from api_service.services.objects import creation_fields, requested_project, visible
from api_service.services.scheduling import (
    IpAddress,
    choose_placement,
    pick_device,
    pinned_device,
    release_place,
    served_subnets,
)
from api_service.services.tree import Tree, load_tree, mark
from shared.status import CommandAction, ProvisioningStatus

_CREATE_ATTEMPTS = 5
"""A create is tried again when another one took its VIP or its device's last place first."""


_DEVICE_FULL = "devices_room"
"""What a create's commit violates when its device filled up meanwhile: the trigger that
counts a new load balancer on its device at commit (migration 0010) found no room."""
_VIP_TAKEN = ("loadbalancers_vip_address_key", "vip_ports_ip_address_key")
"""What a create violates when another one took its VIP first."""


@dataclass
class Resync:
    device_id: UUID
    operations: list[Operation] = field(default_factory=list)
    skipped: list[UUID] = field(default_factory=list)
    """Load balancers with a change in flight (or gone meanwhile)."""


@dataclass(frozen=True)
class LoadBalancerService:
    sessions: SessionFactory
    changes: Changes
    default_provider: str

    async def tree(self, ctx: RequestContext, lb_id: UUID) -> Tree:
        async with self.sessions() as session:
            lb = await visible(session, ctx, LoadBalancer, lb_id, "Load balancer")
            return await load_tree(session, lb)

    async def stats(self, ctx: RequestContext, lb_id: UUID) -> LoadBalancerStats | None:
        async with self.sessions() as session:
            await visible(session, ctx, LoadBalancer, lb_id, "Load balancer")
            return await session.get(LoadBalancerStats, lb_id)

    async def listener_stats(self, ctx: RequestContext, listener_id: UUID) -> ListenerStats | None:
        async with self.sessions() as session:
            await visible(session, ctx, Listener, listener_id, "Listener")
            return await session.get(ListenerStats, listener_id)

    async def create(self, ctx: RequestContext, body: LoadBalancerCreate) -> Accepted:
        project_id = requested_project(ctx, body.project_id)
        if not ctx.is_admin and (body.device_id is not None or body.vip_address is not None):
            raise Forbidden(
                "Only an admin may set device_id or vip_address: they choose the device."
            )
        requested_vip = ip_address(body.vip_address) if body.vip_address else None
        for attempt in range(_CREATE_ATTEMPTS):
            last = attempt == _CREATE_ATTEMPTS - 1
            try:
                accepted = await self._create(ctx, body, project_id, requested_vip)
            except IntegrityError as exc:
                violated = _violated(exc)
                if violated == _DEVICE_FULL:
                    if body.device_id is not None:
                        raise Conflict(f"Device {body.device_id} is full.") from None
                    if last:
                        raise NoCapacity(
                            "No Capacity", "Every device chosen filled up while this create ran."
                        ) from None
                    continue  # another create took the last place first: choose again
                if violated not in _VIP_TAKEN:
                    raise
                if requested_vip is not None or last:
                    raise Conflict(
                        f"vip_address {requested_vip or ''} is already in use."
                    ) from None
                continue  # another create took that VIP first
            await self.changes.publish(accepted.command)
            return accepted
        raise AssertionError("unreachable")

    async def _create(
        self,
        ctx: RequestContext,
        body: LoadBalancerCreate,
        project_id: str,
        requested_vip: IpAddress | None,
    ) -> Accepted:
        async with self.sessions.begin() as session:
            placement = await placement_of(
                session, body.provider, body.flavor_id, body.availability_zone
            )
            wanted = await vip_request(
                session,
                ctx,
                project_id,
                port_id=body.vip_port_id,
                subnet_id=body.vip_subnet_id,
                network_id=body.vip_network_id,
                address=requested_vip,
            )
            claimed = None
            if body.device_id is not None:
                device = await pinned_device(
                    session,
                    body.device_id,
                    placement.provider,
                    device_group=placement.device_group,
                )
                served = await served_subnets(session, device, wanted.subnets)
            else:
                device, served, claimed = await choose_placement(
                    session,
                    placement.provider or self.default_provider,
                    wanted.subnets,
                    device_group=placement.device_group,
                    claim=wanted.port is None and wanted.address is None,
                )
            if claimed is not None:
                subnet, address = served[0], claimed
            else:
                subnet, address = await place_vip(session, device, served, wanted)
            lb = LoadBalancer(
                id=uuid4(),
                provider=device.driver,
                device_id=device.id,
                vip_address=address,
                vip_subnet_id=str(subnet.id),
                vip_network_id=str(subnet.network_id),
                flavor_id=body.flavor_id,
                availability_zone=body.availability_zone,
                generation=1,
                **creation_fields(project_id, body, 1),
            )
            tree = Tree(lb=lb)
            _create_children(ctx, tree, body)
            session.add_all(list(tree.children()))
            port = take_port(wanted.port, lb, subnet, address)
            operation, command = await self.changes.record(
                session,
                ctx,
                tree,
                device,
                action="create",
                target_type="loadbalancer",
                target_id=lb.id,
                command_action=CommandAction.APPLY,
                written=(lb,) if port is wanted.port else (lb, port),
            )
        return Accepted(
            target=lb,
            loadbalancer=lb,
            operation=operation,
            command=command,
            created=(*tree.objects(), port),
        )

    async def delete(
        self, ctx: RequestContext, lb_id: UUID, *, cascade: bool, if_match: str | None
    ) -> Accepted:
        """Without ``cascade`` only a load balancer with no (live) children may go."""

        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            require_etag(tree.lb, if_match)
            children = tree.live_children()
            if children and not cascade:
                kinds = sorted({type(child).__name__ for child in children})
                raise Conflict(
                    f"Load balancer {lb_id} still has {len(children)} object(s) "
                    f"({', '.join(kinds)}); delete them first or use ?cascade=true."
                )
            for obj in tree.objects():
                mark(obj, ProvisioningStatus.PENDING_DELETE, generation)
            return tree.lb

        return await self.changes.change(
            ctx,
            lb_id,
            edit,
            action="delete",
            target_type="loadbalancer",
            command_action=CommandAction.DELETE,
        )

    async def failover(self, ctx: RequestContext, lb_id: UUID) -> Accepted:
        """Apply the tree again; on another device of its driver if its own is disabled."""
        if not ctx.is_admin:
            raise Forbidden("Only an admin may fail a load balancer over.")

        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            lb = tree.lb
            device = await session.get(Device, lb.device_id)
            if device is not None and not device.enabled:
                subnets = await vip_subnets(session, lb.id)
                target = await pick_device(
                    session,
                    lb.provider,
                    subnets,
                    device_group=await device_group_of(session, lb.flavor_id, lb.availability_zone),
                    exclude=device.id,
                )
                await release_place(session, device.id)
                lb.device_id = target.id
            mark(lb, ProvisioningStatus.PENDING_UPDATE, generation)
            return lb

        return await self.changes.change(
            ctx, lb_id, edit, action="failover", target_type="loadbalancer"
        )

    async def resync(self, ctx: RequestContext, device_id: UUID) -> Resync:
        """Publish again the desired state of every load balancer on the device.

        Each becomes ``PENDING_UPDATE`` (or, being deleted, ``PENDING_DELETE``)
        with a new operation; one with a change in flight is skipped.
        """
        async with self.sessions() as session:
            await get_device(session, device_id)
            hosted = (
                await session.execute(
                    select(LoadBalancer.id, LoadBalancer.deleting)
                    .where(LoadBalancer.device_id == device_id)
                    .order_by(LoadBalancer.id)
                )
            ).all()

        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            deleting = ProvisioningStatus.PENDING_DELETE
            mark(
                tree.lb,
                deleting if tree.lb.deleting else ProvisioningStatus.PENDING_UPDATE,
                generation,
            )
            return tree.lb

        resync = Resync(device_id)
        for lb_id, deleting in hosted:
            try:
                accepted = await self.changes.change(
                    ctx,
                    lb_id,
                    edit,
                    action="resync",
                    target_type="loadbalancer",
                    command_action=CommandAction.DELETE if deleting else CommandAction.APPLY,
                )
            except (NotFound, Conflict):
                resync.skipped.append(lb_id)
                continue
            resync.operations.append(accepted.operation)
        return resync


def _violated(error: IntegrityError) -> str | None:
    """The constraint the statement (or the commit) violated, as PostgreSQL names it."""
    driver_error = getattr(error.orig, "driver_exception", None)
    name: str | None = getattr(driver_error, "constraint_name", None)
    return name


def _create_children(ctx: RequestContext, tree: Tree, body: LoadBalancerCreate) -> None:
    """The nested graph of a single-call create, all in PENDING_CREATE at generation 1."""
    for listener_body in body.listeners:
        listener = new_listener(ctx, tree, listener_body, 1)
        if listener_body.default_pool is not None:
            pool = _create_pool(ctx, tree, listener_body.default_pool)
            set_default_pool(tree, listener, pool.id)
        for policy_body in listener_body.l7policies:
            if policy_body.redirect_pool is not None:
                if policy_body.action is not L7Action.REDIRECT_TO_POOL:
                    raise Invalid("redirect_pool", "only a REDIRECT_TO_POOL policy has one")
                redirect = _create_pool(ctx, tree, policy_body.redirect_pool)
                policy_body = policy_body.model_copy(update={"redirect_pool_id": redirect.id})
            new_policy(ctx, tree, listener, policy_body, 1)
    for pool_body in body.pools:
        _create_pool(ctx, tree, pool_body)


def _create_pool(ctx: RequestContext, tree: Tree, body: PoolInTree) -> Pool:
    pool = new_pool(ctx, tree, body, 1)
    taken: set[MemberKey] = set()
    for member_body in body.members:
        new_member(ctx, tree, pool, member_body, 1, taken)
    if body.healthmonitor is not None:
        new_healthmonitor(ctx, tree, pool, body.healthmonitor, 1)
    return pool
