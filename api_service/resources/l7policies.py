"""L7 policies: what an HTTP listener does with requests matching all of a policy's rules.

A listener's policies are ordered by ``position``, from 1 without gaps:
inserting at a position (or moving to it) shifts the ones from there on, and
a policy gone closes its gap; a position past the end is the end. The first
matching policy wins; none, the listener's default pool. A redirect pool is a
pool of the same load balancer that the listener can forward to.
"""

from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.listing import parse_int
from api_service.db.models import L7Policy, L7Rule, Listener
from api_service.errors import Invalid, NotFound
from api_service.resources.common import common_fields, loadbalancer_via
from api_service.resources.l7rules import new_rule
from api_service.resources.listeners import COMPATIBLE_PROTOCOLS
from api_service.schemas.common import IdRef
from api_service.schemas.l7policies import (
    L7PolicyBody,
    L7PolicyCreate,
    L7PolicyCreateBody,
    L7PolicyList,
    L7PolicyOut,
    L7PolicyUpdate,
    L7PolicyUpdateBody,
)
from api_service.schemas.links import link
from api_service.services.changes import require_mutable
from api_service.services.objects import apply_update, creation_fields, find, owner_project
from api_service.services.resource import Related, Relation, Resource
from api_service.services.tree import Tree, mark
from shared.allow_lists import DEFAULT_REDIRECT_HTTP_CODE, l7_policy_problem
from shared.status import ProvisioningStatus

_REDIRECT_FIELDS = {
    "REJECT": (),
    "REDIRECT_TO_POOL": ("redirect_pool_id",),
    "REDIRECT_TO_URL": ("redirect_url", "redirect_http_code"),
    "REDIRECT_PREFIX": ("redirect_prefix", "redirect_http_code"),
}
"""What each action uses; the other redirect fields are cleared."""


def new_policy(
    ctx: RequestContext, tree: Tree, listener: Listener, body: L7PolicyCreate, generation: int
) -> L7Policy:
    project = owner_project(ctx, body.project_id, tree.lb.project_id)
    if listener.protocol != "HTTP":
        raise Invalid(
            "listener_id", f"L7 policies apply to HTTP listeners, not {listener.protocol}"
        )
    policy = L7Policy(
        id=uuid4(),
        loadbalancer_id=tree.lb.id,
        listener_id=listener.id,
        action=body.action.value,
        position=0,
        redirect_pool_id=body.redirect_pool_id,
        redirect_url=body.redirect_url,
        redirect_prefix=body.redirect_prefix,
        redirect_http_code=body.redirect_http_code,
        **creation_fields(project, body, generation),
    )
    _settle_action(tree, listener, policy)
    tree.l7policies.append(policy)
    place(tree, policy, body.position)
    for rule in body.rules:
        new_rule(ctx, tree, policy, rule, generation)
    return policy


def place(tree: Tree, policy: L7Policy, position: int | None) -> None:
    """Put ``policy`` at ``position`` (None: last) among its listener's live policies."""
    others = [
        p for p in tree.l7policies_of(policy.listener_id) if p is not policy and not p.deleting
    ]
    index = len(others) if position is None else min(position - 1, len(others))
    others.insert(index, policy)
    for number, placed in enumerate(others, start=1):
        placed.position = number


def _settle_action(tree: Tree, listener: Listener, policy: L7Policy) -> None:
    """Check the policy's action and what it needs; clear the redirect fields it does not use."""
    used = _REDIRECT_FIELDS[policy.action]
    for name in ("redirect_pool_id", "redirect_url", "redirect_prefix", "redirect_http_code"):
        if name not in used:
            setattr(policy, name, None)
    if "redirect_http_code" in used and policy.redirect_http_code is None:
        policy.redirect_http_code = DEFAULT_REDIRECT_HTTP_CODE
    problem = l7_policy_problem(
        policy.action,
        redirect_pool_id=policy.redirect_pool_id,
        redirect_url=policy.redirect_url,
        redirect_prefix=policy.redirect_prefix,
        redirect_http_code=policy.redirect_http_code,
    )
    if problem is not None:
        raise Invalid(used[0] if used else "action", problem)
    if policy.redirect_pool_id is not None:
        pool = next(
            (p for p in tree.pools if p.id == policy.redirect_pool_id and not p.deleting), None
        )
        if pool is None:
            raise NotFound("Pool", policy.redirect_pool_id, field="redirect_pool_id")
        if pool.protocol not in COMPATIBLE_PROTOCOLS[listener.protocol]:
            raise Invalid(
                "redirect_pool_id",
                f"a {listener.protocol} listener cannot use a {pool.protocol} pool",
            )


async def _locate(
    session: AsyncSession, ctx: RequestContext, body: L7PolicyCreate, _: UUID | None
) -> UUID:
    return await loadbalancer_via(
        session, ctx, Listener, "Listener", body.listener_id, "listener_id"
    )


def _new(
    ctx: RequestContext, tree: Tree, body: L7PolicyCreate, generation: int, _: UUID | None
) -> L7Policy:
    assert body.listener_id is not None, "located by listener_id"
    listener = find(tree.listeners, body.listener_id, "Listener")
    require_mutable(listener, "Listener")
    return new_policy(ctx, tree, listener, body, generation)


_ACTION_OF_FIELD = {
    "redirect_pool_id": "REDIRECT_TO_POOL",
    "redirect_url": "REDIRECT_TO_URL",
    "redirect_prefix": "REDIRECT_PREFIX",
}
"""The action an update means when it sends a redirect field but no action (as Octavia)."""


def _update(tree: Tree, policy: L7Policy, body: L7PolicyUpdate) -> None:
    apply_update(policy, body, skip=frozenset({"position", "redirect_pool_id"}))
    if "redirect_pool_id" in body.model_fields_set:
        policy.redirect_pool_id = body.redirect_pool_id
    if body.action is None:
        sent = [name for name in _ACTION_OF_FIELD if getattr(body, name) is not None]
        if sent:
            policy.action = _ACTION_OF_FIELD[sent[0]]
    listener = find(tree.listeners, policy.listener_id, "Listener")
    _settle_action(tree, listener, policy)
    if "position" in body.model_fields_set:
        place(tree, policy, body.position)


def _delete(tree: Tree, policy: L7Policy, generation: int) -> None:
    """The policy goes with its rules; the policies after it move up."""
    for rule in tree.l7rules_of(policy.id):
        mark(rule, ProvisioningStatus.PENDING_DELETE, generation)
    mark(policy, ProvisioningStatus.PENDING_DELETE, generation)
    live = [p for p in tree.l7policies_of(policy.listener_id) if not p.deleting]
    for number, kept in enumerate(live, start=1):
        kept.position = number


def policy_out(policy: L7Policy, rel: Related, ctx: RequestContext) -> L7PolicyOut:
    return L7PolicyOut(
        **common_fields(policy),
        action=policy.action,
        listener_id=policy.listener_id,
        position=policy.position,
        redirect_pool_id=policy.redirect_pool_id,
        redirect_url=policy.redirect_url,
        redirect_prefix=policy.redirect_prefix,
        redirect_http_code=policy.redirect_http_code,
        rules=[IdRef(id=i) for i in rel.of("rules")],
    )


_ID = "$response.body#/l7policy/id"
_THIS = {"path.l7policy_id": _ID}

L7POLICY: Resource[Any] = Resource(
    key="l7policy",
    plural="l7policies",
    title="L7 policy",
    operation="L7Policy",
    operations="L7Policies",
    path_id="l7policy_id",
    summary="an L7 policy",
    plural_summary="L7 policies",
    model=L7Policy,
    in_tree=lambda tree: tree.l7policies,
    locate=_locate,
    new=_new,
    update=_update,
    delete=_delete,
    out=policy_out,
    create_body=L7PolicyCreateBody,
    update_body=L7PolicyUpdateBody,
    body=L7PolicyBody,
    listing=L7PolicyList,
    filters={
        "listener_id": UUID,
        "action": str,
        "position": parse_int,
        "redirect_pool_id": UUID,
        "redirect_url": str,
        "redirect_prefix": str,
        "redirect_http_code": parse_int,
    },
    sorts=frozenset({"action", "position"}),
    defaults={
        "position": None,
        "redirect_pool_id": None,
        "redirect_url": None,
        "redirect_prefix": None,
        "redirect_http_code": None,
    },
    related={"rules": Relation(L7Rule.l7policy_id, L7Rule.id)},
    links={
        "CreateL7Rule": link("createL7Rule", "Add a rule.", _THIS),
        "ListL7Rules": link("listL7Rules", "List its rules.", _THIS),
        "UpdateL7Policy": link("updateL7Policy", "Change it.", _THIS),
        "DeleteL7Policy": link("deleteL7Policy", "Delete it.", _THIS),
    },
)
