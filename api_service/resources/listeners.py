"""Listeners: one per port of a load balancer, with a default pool it can forward to."""

from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.listing import parse_int
from api_service.db.models import L7Policy, Listener, LoadBalancer
from api_service.errors import Conflict, Invalid, NotFound
from api_service.resources.common import common_fields, loadbalancer_via
from api_service.schemas.common import IdRef
from api_service.schemas.links import link
from api_service.schemas.listeners import (
    CLIENT_CERTIFICATE_HEADERS,
    ListenerBody,
    ListenerCreate,
    ListenerCreateBody,
    ListenerFields,
    ListenerList,
    ListenerOut,
    ListenerUpdate,
    ListenerUpdateBody,
)
from api_service.services.objects import (
    apply_update,
    creation_fields,
    given_or_default,
    owner_project,
)
from api_service.services.resource import LOADBALANCER_ID_FILTERS, Related, Relation, Resource
from api_service.services.tree import Tree, mark
from shared.status import ProvisioningStatus

DEFAULT_TIMEOUTS = {
    "timeout_client_data": 50_000,
    "timeout_member_connect": 5_000,
    "timeout_member_data": 50_000,
    "timeout_tcp_inspect": 0,
}
DEFAULTS: dict[str, object] = {
    "connection_limit": -1,
    "insert_headers": {},
    "allowed_cidrs": [],
    **DEFAULT_TIMEOUTS,
}
"""A listener's own fields when a create leaves them out or an update sends null."""
COMPATIBLE_PROTOCOLS: dict[str, frozenset[str]] = {
    "HTTP": frozenset({"HTTP", "PROXY", "PROXYV2"}),
    "HTTPS": frozenset({"HTTPS", "TCP", "PROXY", "PROXYV2"}),
    "TCP": frozenset({"TCP", "HTTP", "HTTPS", "PROXY", "PROXYV2"}),
    "TERMINATED_HTTPS": frozenset({"HTTP", "PROXY", "PROXYV2"}),
    "UDP": frozenset({"UDP"}),
    "SCTP": frozenset({"SCTP"}),
    "PROMETHEUS": frozenset(),
}
"""Listener protocol → the pool protocols it can forward to (Octavia's
``VALID_LISTENER_POOL_PROTOCOL_MAP``)."""


def new_listener(
    ctx: RequestContext, tree: Tree, body: ListenerCreate, generation: int
) -> Listener:
    """A listener in PENDING_CREATE, added to ``tree``; checks port and default pool."""
    project = owner_project(ctx, body.project_id, tree.lb.project_id)
    taken = {lst.protocol_port for lst in tree.listeners if not lst.deleting}
    if body.protocol_port in taken:
        raise Conflict(
            f"Load balancer {tree.lb.id} already has a listener on port {body.protocol_port}."
        )
    _check_insert_headers(body.protocol.value, body)
    listener = Listener(
        id=uuid4(),
        loadbalancer_id=tree.lb.id,
        protocol=body.protocol.value,
        protocol_port=body.protocol_port,
        **given_or_default(body, DEFAULTS),
        **creation_fields(project, body, generation),
    )
    if body.default_pool_id is not None:
        set_default_pool(tree, listener, body.default_pool_id)
    tree.listeners.append(listener)
    return listener


def set_default_pool(tree: Tree, listener: Listener, pool_id: UUID | None) -> None:
    if pool_id is None:
        listener.default_pool_id = None
        return
    pool = next((p for p in tree.pools if p.id == pool_id and not p.deleting), None)
    if pool is None:
        raise NotFound("Pool", pool_id, field="default_pool_id")
    if pool.protocol not in COMPATIBLE_PROTOCOLS[listener.protocol]:
        raise Invalid(
            "default_pool_id", f"a {listener.protocol} listener cannot use a {pool.protocol} pool"
        )
    users = [other for other in tree.listeners_of(pool_id) if other is not listener]
    if users:
        raise Conflict(f"Pool {pool_id} is already the default pool of listener {users[0].id}.")
    listener.default_pool_id = pool_id


HEADER_PROTOCOLS = frozenset({"HTTP", "TERMINATED_HTTPS"})
"""The listener protocols that insert headers (Octavia's)."""


def _check_insert_headers(protocol: str, body: ListenerFields) -> None:
    if body.insert_headers and protocol not in HEADER_PROTOCOLS:
        raise Invalid(
            "insert_headers",
            f"headers can only be inserted by HTTP and TERMINATED_HTTPS listeners, not {protocol}",
        )
    certificate = sorted(set(body.insert_headers or ()) & CLIENT_CERTIFICATE_HEADERS)
    if certificate and protocol != "TERMINATED_HTTPS":
        raise Invalid(
            "insert_headers",
            f"{', '.join(certificate)}: only TERMINATED_HTTPS listeners insert X-SSL-* headers",
        )


async def _locate(
    session: AsyncSession, ctx: RequestContext, body: ListenerCreate, _: UUID | None
) -> UUID:
    return await loadbalancer_via(
        session, ctx, LoadBalancer, "Load balancer", body.loadbalancer_id, "loadbalancer_id"
    )


def _new(
    ctx: RequestContext, tree: Tree, body: ListenerCreate, generation: int, _: UUID | None
) -> Listener:
    return new_listener(ctx, tree, body, generation)


def _update(tree: Tree, listener: Listener, body: ListenerUpdate) -> None:
    _check_insert_headers(listener.protocol, body)
    apply_update(listener, body, skip=frozenset({"default_pool_id"}))
    if "default_pool_id" in body.model_fields_set:
        set_default_pool(tree, listener, body.default_pool_id)


def delete_listener(tree: Tree, listener: Listener, generation: int) -> None:
    """The listener goes with its L7 policies and their rules."""
    for policy in tree.l7policies_of(listener.id):
        for rule in tree.l7rules_of(policy.id):
            mark(rule, ProvisioningStatus.PENDING_DELETE, generation)
        mark(policy, ProvisioningStatus.PENDING_DELETE, generation)
    mark(listener, ProvisioningStatus.PENDING_DELETE, generation)


def listener_out(listener: Listener, rel: Related, ctx: RequestContext) -> ListenerOut:
    return ListenerOut(
        **common_fields(listener),
        protocol=listener.protocol,
        protocol_port=listener.protocol_port,
        connection_limit=listener.connection_limit,
        default_pool_id=listener.default_pool_id,
        loadbalancers=[IdRef(id=listener.loadbalancer_id)],
        timeout_client_data=listener.timeout_client_data,
        timeout_member_connect=listener.timeout_member_connect,
        timeout_member_data=listener.timeout_member_data,
        timeout_tcp_inspect=listener.timeout_tcp_inspect,
        insert_headers=dict(listener.insert_headers),
        allowed_cidrs=list(listener.allowed_cidrs) or None,
        l7policies=[IdRef(id=i) for i in rel.of("l7policies")],
    )


_ID = "$response.body#/listener/id"
_THIS = {"path.listener_id": _ID}

LISTENER: Resource[Any] = Resource(
    key="listener",
    plural="listeners",
    title="Listener",
    operation="Listener",
    operations="Listeners",
    path_id="listener_id",
    summary="a listener",
    plural_summary="listeners",
    model=Listener,
    in_tree=lambda tree: tree.listeners,
    locate=_locate,
    new=_new,
    update=_update,
    delete=delete_listener,
    out=listener_out,
    create_body=ListenerCreateBody,
    update_body=ListenerUpdateBody,
    body=ListenerBody,
    listing=ListenerList,
    filters={
        **LOADBALANCER_ID_FILTERS,
        "protocol": str,
        "protocol_port": parse_int,
        "connection_limit": parse_int,
        "default_pool_id": UUID,
        **{name: parse_int for name in DEFAULT_TIMEOUTS},
    },
    sorts=frozenset({"protocol", "protocol_port", "connection_limit"}),
    defaults={**DEFAULTS, "default_pool_id": None},
    related={"l7policies": Relation(L7Policy.listener_id, L7Policy.id, L7Policy.position)},
    links={
        "CreatePool": link(
            "createPool", "Add its default pool.", body={"pool": {"listener_id": _ID}}
        ),
        "CreateL7Policy": link(
            "createL7Policy", "Route some of its requests.", body={"l7policy": {"listener_id": _ID}}
        ),
        "UpdateListener": link("updateListener", "Change it.", _THIS),
        "DeleteListener": link("deleteListener", "Delete it.", _THIS),
        "GetListenerStats": link("getListenerStats", "Its traffic counters.", _THIS),
    },
)
