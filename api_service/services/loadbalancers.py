"""Load balancer rules: create, update and delete go through the status machine of DESIGN §4."""

from dataclasses import dataclass
from ipaddress import ip_address
from uuid import UUID, uuid4

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.context import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.models import Device, LoadBalancer
from api_service.messaging.commands import CommandPublisher
from api_service.problems import ProblemError, conflict, not_found
from api_service.schemas.loadbalancers import LoadBalancerCreate, LoadBalancerUpdate
from api_service.services.changes import Change, record_change
from api_service.services.scheduling import (
    IpAddress,
    allocate_vip,
    pick_device,
    take_pinned_place,
)
from shared.status import (
    MUTABLE_STATUSES,
    CommandAction,
    OperatingStatus,
    ProvisioningStatus,
)

_VIP_RACE_ATTEMPTS = 3


@dataclass(frozen=True)
class Accepted:
    """A change committed and handed to the broker (or to the outbox relay)."""

    loadbalancer: LoadBalancer
    change: Change


@dataclass(frozen=True)
class LoadBalancerService:
    sessions: SessionFactory
    commands: CommandPublisher
    shards: int
    default_provider: str

    async def get(self, ctx: RequestContext, lb_id: UUID) -> LoadBalancer:
        async with self.sessions() as session:
            return await _visible(session, ctx, lb_id)

    async def list(self, ctx: RequestContext, limit: int) -> list[LoadBalancer]:
        query = select(LoadBalancer).order_by(LoadBalancer.created_at, LoadBalancer.id).limit(limit)
        if not ctx.is_admin:
            query = query.where(LoadBalancer.project_id == ctx.project_id)
        async with self.sessions() as session:
            return list(await session.scalars(query))

    async def create(self, ctx: RequestContext, body: LoadBalancerCreate) -> Accepted:
        if body.project_id is not None and not ctx.is_admin and body.project_id != ctx.project_id:
            raise ProblemError(403, "Forbidden", "Only an admin may set project_id.")
        if body.device_id is not None and not ctx.is_admin:
            raise ProblemError(403, "Forbidden", "Only an admin may set device_id.")
        requested_vip = ip_address(body.vip_address) if body.vip_address else None
        for attempt in range(_VIP_RACE_ATTEMPTS):
            try:
                lb, change = await self._create(ctx, body, requested_vip)
            except IntegrityError as exc:
                if "vip_address" not in str(exc.orig):
                    raise
                if requested_vip is not None or attempt == _VIP_RACE_ATTEMPTS - 1:
                    raise conflict(
                        f"vip_address {requested_vip or ''} is already in use."
                    ) from None
                continue  # another device with an overlapping range took that VIP first
            return await self._accepted(lb, change)
        raise AssertionError("unreachable")

    async def _create(
        self, ctx: RequestContext, body: LoadBalancerCreate, requested_vip: IpAddress | None
    ) -> tuple[LoadBalancer, Change]:
        provider = body.provider or self.default_provider
        async with self.sessions.begin() as session:
            if body.device_id is not None:
                device = await take_pinned_place(session, body.device_id, body.provider)
            else:
                device = await pick_device(session, provider, requested_vip)
            lb = LoadBalancer(
                id=uuid4(),
                project_id=body.project_id or ctx.project_id,
                name=body.name,
                description=body.description,
                admin_state_up=body.admin_state_up,
                provisioning_status=ProvisioningStatus.PENDING_CREATE.value,
                operating_status=OperatingStatus.OFFLINE.value,
                provider=device.driver,
                device_id=device.id,
                vip_address=await allocate_vip(session, device, requested_vip),
                tags=body.tags,
                generation=1,
            )
            session.add(lb)
            await session.flush()
            change = await self._record(session, lb, device, "create", CommandAction.APPLY)
        return lb, change

    async def update(self, ctx: RequestContext, lb_id: UUID, body: LoadBalancerUpdate) -> Accepted:
        async with self.sessions.begin() as session:
            lb = await _lock_mutable(session, ctx, lb_id)
            for field, value in body.model_dump(exclude_unset=True).items():
                if value is not None:
                    setattr(lb, field, value)
            lb.provisioning_status = ProvisioningStatus.PENDING_UPDATE.value
            change = await self._record(
                session, lb, await _device(session, lb), "update", CommandAction.APPLY
            )
        return await self._accepted(lb, change)

    async def delete(self, ctx: RequestContext, lb_id: UUID) -> Accepted:
        async with self.sessions.begin() as session:
            lb = await _lock_mutable(session, ctx, lb_id)
            lb.provisioning_status = ProvisioningStatus.PENDING_DELETE.value
            change = await self._record(
                session, lb, await _device(session, lb), "delete", CommandAction.DELETE
            )
        return await self._accepted(lb, change)

    async def _record(
        self,
        session: AsyncSession,
        lb: LoadBalancer,
        device: Device,
        action: str,
        command_action: CommandAction,
    ) -> Change:
        if action != "create":
            lb.generation += 1
            lb.status_reason = None
        await session.flush()
        return await record_change(
            session, lb, device, action=action, command_action=command_action, shards=self.shards
        )

    async def _accepted(self, lb: LoadBalancer, change: Change) -> Accepted:
        await self.commands.publish_new(lb.id)
        return Accepted(loadbalancer=lb, change=change)


async def _visible(session: AsyncSession, ctx: RequestContext, lb_id: UUID) -> LoadBalancer:
    lb = await session.get(LoadBalancer, lb_id)
    if lb is None or not ctx.owns(lb.project_id):
        raise not_found("Load balancer", lb_id)
    return lb


async def _lock_mutable(session: AsyncSession, ctx: RequestContext, lb_id: UUID) -> LoadBalancer:
    """Lock the load balancer row; refuse while a change is in flight (DESIGN §4)."""
    lb = await session.scalar(
        select(LoadBalancer).where(LoadBalancer.id == lb_id).with_for_update()
    )
    if lb is None or not ctx.owns(lb.project_id):
        raise not_found("Load balancer", lb_id)
    if lb.provisioning_status not in MUTABLE_STATUSES:
        raise conflict(
            f"Load balancer {lb_id} is {lb.provisioning_status}; it accepts changes again once "
            "it is ACTIVE or ERROR (a PENDING_* object becomes ERROR after the pending timeout)."
        )
    return lb


async def _device(session: AsyncSession, lb: LoadBalancer) -> Device:
    device = await session.get(Device, lb.device_id)
    assert device is not None, "loadbalancers.device_id is a foreign key"
    return device
