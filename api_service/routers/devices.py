"""``/lbaas/devices`` (admin extension): synchronous CRUD of devices."""

from collections.abc import Sequence
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status

from api_service.access import RequestContext
from api_service.context import admin_context, global_reader_context
from api_service.db.models import Device
from api_service.problems import problems
from api_service.routers.http import CHECKED, IDEMPOTENCY_KEY, absolute_url
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.devices import (
    DeviceBody,
    DeviceCreateBody,
    DeviceList,
    DeviceOut,
    DeviceUpdateBody,
    ResyncBody,
    ResyncOperation,
    ResyncOut,
)
from api_service.schemas.links import link

router = APIRouter(prefix="/lbaas/devices", tags=["devices"])
Reader = Depends(global_reader_context)
Admin = Depends(admin_context)


async def shown(runtime: Runtime, devices: list[Device]) -> list[DeviceOut]:
    """The devices as the API shows them, with the subnets each serves."""
    subnets = await runtime.devices.subnets([device.id for device in devices])
    return [device_out(device, subnets[device.id]) for device in devices]


async def shown_one(runtime: Runtime, device: Device) -> DeviceBody:
    (out,) = await shown(runtime, [device])
    return DeviceBody(device=out)


def device_out(device: Device, subnet_ids: Sequence[UUID]) -> DeviceOut:
    return DeviceOut(
        id=device.id,
        name=device.name,
        driver=device.driver,
        management_url=device.management_url,
        has_management_secret=device.management_secret is not None,
        vip_cidr=str(device.vip_cidr),
        vip_subnet_ids=list(subnet_ids),
        capacity=device.capacity,
        enabled=device.enabled,
        device_group=device.device_group,
        operating_status=device.operating_status,
        loadbalancer_count=device.loadbalancer_count,
        created_at=device.created_at,
        updated_at=device.updated_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    operation_id="createDevice",
    summary="Register a device",
    responses={
        201: {
            "headers": {
                "Location": {
                    "description": "The device's URL",
                    "required": True,
                    "schema": {"type": "string", "format": "uri"},
                }
            },
            "links": {
                "GetDevice": link(
                    "getDevice", "Show it.", {"path.device_id": "$response.body#/device/id"}
                )
            },
        },
        **problems(*CHECKED, 400, 403, 404, 409, 413, 422),
    },
    openapi_extra=IDEMPOTENCY_KEY,
)
async def create(
    body: DeviceCreateBody,
    request: Request,
    response: Response,
    _: RequestContext = Admin,
    runtime: Runtime = Depends(get_runtime),
) -> DeviceBody:
    device = await runtime.devices.create(body.device)
    response.headers["Location"] = absolute_url(request, f"/v2/lbaas/devices/{device.id}")
    return await shown_one(runtime, device)


@router.get(
    "",
    operation_id="listDevices",
    summary="List devices",
    responses=problems(*CHECKED, 403),
)
async def list_(_: RequestContext = Reader, runtime: Runtime = Depends(get_runtime)) -> DeviceList:
    return DeviceList(devices=await shown(runtime, await runtime.devices.list()))


@router.get(
    "/{device_id}",
    operation_id="getDevice",
    summary="Show a device",
    responses=problems(*CHECKED, 400, 403, 404),
)
async def get(
    device_id: UUID, _: RequestContext = Reader, runtime: Runtime = Depends(get_runtime)
) -> DeviceBody:
    return await shown_one(runtime, await runtime.devices.get(device_id))


@router.put(
    "/{device_id}",
    operation_id="updateDevice",
    summary="Update a device (its driver and range only while it hosts nothing)",
    responses=problems(*CHECKED, 400, 403, 404, 409, 413),
)
async def update(
    device_id: UUID,
    body: DeviceUpdateBody,
    _: RequestContext = Admin,
    runtime: Runtime = Depends(get_runtime),
) -> DeviceBody:
    return await shown_one(runtime, await runtime.devices.update(device_id, body.device))


@router.delete(
    "/{device_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deleteDevice",
    summary="Remove a device that hosts no load balancer",
    responses={
        204: {"description": "Removed"},
        **problems(*CHECKED, 400, 403, 404, 409, 413),
    },
)
async def delete(
    device_id: UUID, _: RequestContext = Admin, runtime: Runtime = Depends(get_runtime)
) -> None:
    await runtime.devices.delete(device_id)


@router.post(
    "/{device_id}/resync",
    status_code=status.HTTP_202_ACCEPTED,
    operation_id="resyncDevice",
    summary="Publish again the desired state of every load balancer on the device",
    description=(
        "Each load balancer becomes PENDING_UPDATE (PENDING_DELETE if it is being deleted) "
        "with a new operation; one with a change in flight is skipped."
    ),
    responses=problems(*CHECKED, 400, 403, 404),
)
async def resync(
    device_id: UUID, ctx: RequestContext = Admin, runtime: Runtime = Depends(get_runtime)
) -> ResyncBody:
    done = await runtime.loadbalancers.resync(ctx, device_id)
    operations = [
        ResyncOperation(id=op.id, loadbalancer_id=op.loadbalancer_id) for op in done.operations
    ]
    return ResyncBody(
        resync=ResyncOut(device_id=device_id, operations=operations, skipped=done.skipped)
    )
