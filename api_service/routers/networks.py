"""``/networks``, ``/subnets``, ``/ports`` (under ``/v2.0`` as Neutron's, and ``/v2``): the VIP
networks OpenStack clients look names up in (``--vip-subnet-id web-vips``). Every caller reads
networks and subnets, and its own ports; admins create and delete them."""

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse

from api_service.access import RequestContext
from api_service.context import admin_context, request_context
from api_service.db.listing import ListQuery
from api_service.db.models import VipNetwork, VipPort, VipSubnet
from api_service.problems import problems
from api_service.routers.http import (
    CHECKED,
    IDEMPOTENCY_KEY,
    LIST_PROBLEMS,
    READ_PROBLEMS,
    absolute_url,
    list_parameters,
    page_response,
)
from api_service.routers.listing import list_query
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.networks import (
    AllocationPoolOut,
    ExtensionList,
    FixedIpOut,
    NetworkBody,
    NetworkCreateBody,
    NetworkList,
    NetworkOut,
    PortBody,
    PortCreateBody,
    PortList,
    PortOut,
    SubnetBody,
    SubnetCreateBody,
    SubnetList,
    SubnetOut,
)
from api_service.services.networks import (
    NETWORK_FILTERS,
    NEUTRON_SORTS,
    PORT_FILTERS,
    SUBNET_FILTERS,
)

router = APIRouter(tags=["networks"])
Admin = Depends(admin_context)
Authenticated = Depends(request_context)
ADMIN_CREATE_PROBLEMS = problems(*CHECKED, 400, 403, 404, 409, 413, 422)
ADMIN_DELETE_PROBLEMS = problems(*CHECKED, 400, 403, 404, 409)


def network_out(network: VipNetwork, subnets: Sequence[UUID]) -> NetworkOut:
    return NetworkOut(
        id=network.id,
        name=network.name,
        description=network.description,
        project_id=network.project_id,
        tenant_id=network.project_id,
        subnets=list(subnets),
        created_at=network.created_at,
        updated_at=network.updated_at,
    )


def subnet_out(subnet: VipSubnet) -> SubnetOut:
    return SubnetOut(
        id=subnet.id,
        name=subnet.name,
        description=subnet.description,
        project_id=subnet.project_id,
        tenant_id=subnet.project_id,
        network_id=subnet.network_id,
        cidr=str(subnet.cidr),
        ip_version=4 if subnet.ip_version == 4 else 6,
        gateway_ip=None if subnet.gateway_ip is None else str(subnet.gateway_ip),
        allocation_pools=[AllocationPoolOut(**pool) for pool in subnet.allocation_pools],
        created_at=subnet.created_at,
        updated_at=subnet.updated_at,
    )


def port_out(port: VipPort) -> PortOut:
    return PortOut(
        id=port.id,
        name=port.name,
        description="",
        project_id=port.project_id,
        tenant_id=port.project_id,
        network_id=port.network_id,
        fixed_ips=[FixedIpOut(subnet_id=port.subnet_id, ip_address=str(port.ip_address))],
        device_owner=port.device_owner,
        device_id=port.loadbalancer_id,
        status="DOWN" if port.loadbalancer_id is None else "ACTIVE",
        created_at=port.created_at,
        updated_at=port.updated_at,
    )


def _listed(filters: dict[str, Any], *aliases: str) -> dict[str, Any]:
    """``openapi_extra`` of a Neutron list: its filters and Neutron's other names of them."""
    documented = dict(filters)
    for alias, name in (pair.split("=") for pair in aliases):
        documented[alias] = filters[name]
    return list_parameters(documented, NEUTRON_SORTS, tag_filters=False)


def _created(request: Request, response: Response, collection: str, object_id: UUID) -> None:
    response.headers["Location"] = absolute_url(request, f"/v2.0/{collection}/{object_id}")


@router.get(
    "/networks",
    operation_id="listNetworks",
    summary="List VIP networks (Neutron-shaped, shared)",
    response_model=NetworkList,
    responses=LIST_PROBLEMS,
    openapi_extra=_listed(dict(NETWORK_FILTERS), "tenant_id=project_id"),
)
async def list_networks(
    request: Request,
    query: ListQuery = Depends(list_query),
    _: RequestContext = Authenticated,
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    page, subnets = await runtime.networks.networks(query)
    bodies = [network_out(n, s) for n, s in zip(page.items, subnets, strict=True)]
    return page_response(request, query, "networks", page, bodies)


@router.get(
    "/networks/{network_id}",
    operation_id="getNetwork",
    summary="Show a VIP network",
    responses=READ_PROBLEMS,
)
async def get_network(
    network_id: UUID, _: RequestContext = Authenticated, runtime: Runtime = Depends(get_runtime)
) -> NetworkBody:
    return NetworkBody(network=network_out(*await runtime.networks.network(network_id)))


@router.post(
    "/networks",
    status_code=status.HTTP_201_CREATED,
    operation_id="createNetwork",
    summary="Define a VIP network (admin)",
    responses=ADMIN_CREATE_PROBLEMS,
    openapi_extra=IDEMPOTENCY_KEY,
)
async def create_network(
    body: NetworkCreateBody,
    request: Request,
    response: Response,
    ctx: RequestContext = Admin,
    runtime: Runtime = Depends(get_runtime),
) -> NetworkBody:
    network = await runtime.networks.create_network(ctx, body.network)
    _created(request, response, "networks", network.id)
    return NetworkBody(network=network_out(network, []))


@router.delete(
    "/networks/{network_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deleteNetwork",
    summary="Remove a VIP network that has no subnet (admin)",
    responses={204: {"description": "Removed"}, **ADMIN_DELETE_PROBLEMS},
)
async def delete_network(
    network_id: UUID, _: RequestContext = Admin, runtime: Runtime = Depends(get_runtime)
) -> None:
    await runtime.networks.delete_network(network_id)


@router.get(
    "/subnets",
    operation_id="listSubnets",
    summary="List VIP subnets (Neutron-shaped, shared)",
    response_model=SubnetList,
    responses=LIST_PROBLEMS,
    openapi_extra=_listed(dict(SUBNET_FILTERS), "tenant_id=project_id"),
)
async def list_subnets(
    request: Request,
    query: ListQuery = Depends(list_query),
    _: RequestContext = Authenticated,
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    page = await runtime.networks.subnets(query)
    return page_response(request, query, "subnets", page, [subnet_out(s) for s in page.items])


@router.get(
    "/subnets/{subnet_id}",
    operation_id="getSubnet",
    summary="Show a VIP subnet",
    responses=READ_PROBLEMS,
)
async def get_subnet(
    subnet_id: UUID, _: RequestContext = Authenticated, runtime: Runtime = Depends(get_runtime)
) -> SubnetBody:
    return SubnetBody(subnet=subnet_out(await runtime.networks.subnet(subnet_id)))


@router.post(
    "/subnets",
    status_code=status.HTTP_201_CREATED,
    operation_id="createSubnet",
    summary="Define a VIP subnet and its allocation pools (admin)",
    description=(
        "Devices registered (or updated) with this cidr as their vip_cidr serve it: load "
        "balancers created on it get their VIP from its pools."
    ),
    responses=ADMIN_CREATE_PROBLEMS,
    openapi_extra=IDEMPOTENCY_KEY,
)
async def create_subnet(
    body: SubnetCreateBody,
    request: Request,
    response: Response,
    ctx: RequestContext = Admin,
    runtime: Runtime = Depends(get_runtime),
) -> SubnetBody:
    subnet = await runtime.networks.create_subnet(ctx, body.subnet)
    _created(request, response, "subnets", subnet.id)
    return SubnetBody(subnet=subnet_out(subnet))


@router.delete(
    "/subnets/{subnet_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deleteSubnet",
    summary="Remove a VIP subnet no port is on and no device serves (admin)",
    responses={204: {"description": "Removed"}, **ADMIN_DELETE_PROBLEMS},
)
async def delete_subnet(
    subnet_id: UUID, _: RequestContext = Admin, runtime: Runtime = Depends(get_runtime)
) -> None:
    await runtime.networks.delete_subnet(subnet_id)


@router.get(
    "/ports",
    operation_id="listPorts",
    summary="List VIP ports (the caller's project's; every one for global readers)",
    response_model=PortList,
    responses=LIST_PROBLEMS,
    openapi_extra=_listed(dict(PORT_FILTERS), "tenant_id=project_id", "device_id=loadbalancer_id"),
)
async def list_ports(
    request: Request,
    query: ListQuery = Depends(list_query),
    ctx: RequestContext = Authenticated,
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    page = await runtime.networks.ports(ctx, query)
    return page_response(request, query, "ports", page, [port_out(p) for p in page.items])


@router.get(
    "/ports/{port_id}",
    operation_id="getPort",
    summary="Show a VIP port",
    responses=READ_PROBLEMS,
)
async def get_port(
    port_id: UUID, ctx: RequestContext = Authenticated, runtime: Runtime = Depends(get_runtime)
) -> PortBody:
    return PortBody(port=port_out(await runtime.networks.port(ctx, port_id)))


@router.post(
    "/ports",
    status_code=status.HTTP_201_CREATED,
    operation_id="createPort",
    summary="Reserve a VIP address for a project (admin)",
    description="The project may then create a load balancer on it with vip_port_id.",
    responses=ADMIN_CREATE_PROBLEMS,
    openapi_extra=IDEMPOTENCY_KEY,
)
async def create_port(
    body: PortCreateBody,
    request: Request,
    response: Response,
    ctx: RequestContext = Admin,
    runtime: Runtime = Depends(get_runtime),
) -> PortBody:
    port = await runtime.networks.create_port(ctx, body.port)
    _created(request, response, "ports", port.id)
    return PortBody(port=port_out(port))


@router.delete(
    "/ports/{port_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="deletePort",
    summary="Release a reserved VIP port no load balancer uses (admin)",
    responses={204: {"description": "Removed"}, **ADMIN_DELETE_PROBLEMS},
)
async def delete_port(
    port_id: UUID, _: RequestContext = Admin, runtime: Runtime = Depends(get_runtime)
) -> None:
    await runtime.networks.delete_port(port_id)


@router.get(
    "/extensions",
    operation_id="listNetworkExtensions",
    summary="Neutron API extensions (none)",
    responses=problems(*CHECKED),
)
async def list_extensions(_: RequestContext = Authenticated) -> ExtensionList:
    return ExtensionList()
