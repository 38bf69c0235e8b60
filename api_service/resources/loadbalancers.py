"""Load balancers, as the generic routes read and update them (``services.loadbalancers``
places, creates with their tree, deletes, fails over and resyncs them)."""

from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, select

from api_service.access import RequestContext
from api_service.db.listing import Columns, Filter, parse_address
from api_service.db.models import Listener, LoadBalancer, Pool, VipPort
from api_service.resources.common import common_fields
from api_service.schemas.common import IdRef
from api_service.schemas.links import link
from api_service.schemas.loadbalancers import (
    LoadBalancerBody,
    LoadBalancerCreateBody,
    LoadBalancerList,
    LoadBalancerOut,
    LoadBalancerUpdate,
    LoadBalancerUpdateBody,
)
from api_service.services.objects import apply_update
from api_service.services.resource import Related, Relation, Resource
from api_service.services.tree import Tree


def loadbalancer_out(lb: LoadBalancer, rel: Related, ctx: RequestContext) -> LoadBalancerOut:
    return LoadBalancerOut(
        **common_fields(lb),
        provider=lb.provider,
        vip_address=str(lb.vip_address),
        vip_subnet_id=lb.vip_subnet_id,
        vip_network_id=lb.vip_network_id,
        flavor_id=None if lb.flavor_id is None else str(lb.flavor_id),
        availability_zone=lb.availability_zone,
        vip_port_id=next((str(port) for port in rel.of("vip_port")), None),
        listeners=[IdRef(id=i) for i in rel.of("listeners")],
        pools=[IdRef(id=i) for i in rel.of("pools")],
        device_id=lb.device_id if ctx.is_admin else None,
        generation=lb.generation,
    )


def _on_port(columns: Columns, port_ids: list[UUID]) -> ColumnElement[bool]:
    return columns["id"].in_(select(VipPort.loadbalancer_id).where(VipPort.id.in_(port_ids)))


def _update(tree: Tree, lb: LoadBalancer, body: LoadBalancerUpdate) -> None:
    apply_update(lb, body)


_ID = "$response.body#/loadbalancer/id"
_THIS = {"path.loadbalancer_id": _ID}

LOADBALANCER: Resource[Any] = Resource(
    key="loadbalancer",
    plural="loadbalancers",
    title="Load balancer",
    operation="LoadBalancer",
    operations="LoadBalancers",
    path_id="loadbalancer_id",
    summary="a load balancer",
    plural_summary="load balancers",
    model=LoadBalancer,
    in_tree=lambda tree: [tree.lb],
    update=_update,
    delete=None,
    out=loadbalancer_out,
    create_body=LoadBalancerCreateBody,
    update_body=LoadBalancerUpdateBody,
    body=LoadBalancerBody,
    listing=LoadBalancerList,
    filters={
        "vip_address": parse_address,
        "provider": str,
        "vip_subnet_id": str,
        "vip_network_id": str,
        "device_id": UUID,
        "vip_port_id": Filter(UUID, _on_port, "Only the load balancer of this VIP port."),
    },
    admin_filters=frozenset({"device_id"}),
    sorts=frozenset({"vip_address", "provider"}),
    defaults={"vip_qos_policy_id": None},
    related={
        "listeners": Relation(Listener.loadbalancer_id, Listener.id),
        "pools": Relation(Pool.loadbalancer_id, Pool.id),
        "vip_port": Relation(VipPort.loadbalancer_id, VipPort.id),
    },
    links={
        "CreateListener": link(
            "createListener", "Add a listener.", body={"listener": {"loadbalancer_id": _ID}}
        ),
        "CreatePool": link("createPool", "Add a pool.", body={"pool": {"loadbalancer_id": _ID}}),
        "UpdateLoadBalancer": link("updateLoadBalancer", "Change it.", _THIS),
        "DeleteLoadBalancer": link("deleteLoadBalancer", "Delete it.", _THIS),
        "FailoverLoadBalancer": link("failoverLoadBalancer", "Apply it again.", _THIS),
        "GetLoadBalancerStats": link("getLoadBalancerStats", "Its traffic counters.", _THIS),
        "GetLoadBalancerStatusTree": link("getLoadBalancerStatusTree", "Its status tree.", _THIS),
        "ListOperations": link("listOperations", "Its operations.", {"query.loadbalancer_id": _ID}),
    },
)
