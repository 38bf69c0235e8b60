"""The change record: generation bump, operation row and outbox row, in the caller's transaction."""

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.models import Device, LoadBalancer, Operation, OutboxRow
from shared.messages import Command, DeviceSpec, LoadBalancerSpec
from shared.status import CommandAction, OperationStatus
from shared.topology import shard_for


@dataclass(frozen=True)
class Change:
    """What a write produced: the operation clients can follow and the outbox row to publish."""

    operation: Operation
    outbox_id: int


def device_spec(device: Device) -> DeviceSpec:
    return DeviceSpec(
        id=device.id, name=device.name, driver=device.driver, management_url=device.management_url
    )


def loadbalancer_spec(lb: LoadBalancer) -> LoadBalancerSpec:
    return LoadBalancerSpec(
        id=lb.id,
        project_id=lb.project_id,
        name=lb.name,
        description=lb.description,
        admin_state_up=lb.admin_state_up,
        vip_address=str(lb.vip_address),
        generation=lb.generation,
    )


async def record_change(
    session: AsyncSession,
    lb: LoadBalancer,
    device: Device,
    *,
    action: str,
    command_action: CommandAction,
    shards: int,
) -> Change:
    """Write the operation and the command for ``lb`` at its (already bumped) generation."""
    operation = Operation(
        id=uuid4(),
        project_id=lb.project_id,
        loadbalancer_id=lb.id,
        device_id=device.id,
        action=action,
        command_action=command_action.value,
        target_type="loadbalancer",
        target_id=lb.id,
        generation=lb.generation,
        status=OperationStatus.PENDING.value,
    )
    command = Command(
        op_id=operation.id,
        device_id=device.id,
        loadbalancer_id=lb.id,
        generation=lb.generation,
        action=command_action,
        driver=device.driver,
        device=device_spec(device),
        spec=loadbalancer_spec(lb),
        issued_at=datetime.now(UTC),
    )
    outbox = OutboxRow(
        op_id=operation.id,
        loadbalancer_id=lb.id,
        routing_key=str(shard_for(device.id, shards)),
        payload=command.model_dump_json(),
    )
    session.add_all([operation, outbox])
    await session.flush()
    return Change(operation=operation, outbox_id=outbox.id)
