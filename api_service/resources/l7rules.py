"""L7 rules: the conditions of an L7 policy, each value checked against the allow-list of its
type (``shared.allow_lists``), at most ``MAX_L7_RULES_PER_POLICY`` to a policy."""

from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.listing import alias_of, parse_bool
from api_service.db.models import L7Policy, L7Rule
from api_service.errors import Conflict, Invalid
from api_service.resources.common import common_fields, loadbalancer_via
from api_service.schemas.l7rules import (
    L7RuleBody,
    L7RuleCreate,
    L7RuleCreateBody,
    L7RuleList,
    L7RuleOut,
    L7RuleUpdate,
    L7RuleUpdateBody,
)
from api_service.schemas.links import link
from api_service.services.changes import require_mutable
from api_service.services.objects import apply_update, creation_fields, find, owner_project
from api_service.services.resource import Parent, Related, Resource
from api_service.services.tree import Tree
from shared.allow_lists import MAX_L7_RULES_PER_POLICY, l7_rule_problem


def new_rule(
    ctx: RequestContext, tree: Tree, policy: L7Policy, body: L7RuleCreate, generation: int
) -> L7Rule:
    project = owner_project(ctx, body.project_id, tree.lb.project_id)
    live = [rule for rule in tree.l7rules_of(policy.id) if not rule.deleting]
    if len(live) >= MAX_L7_RULES_PER_POLICY:
        raise Conflict(f"L7 policy {policy.id} has {len(live)} rules already, the most it may.")
    rule = L7Rule(
        id=uuid4(),
        loadbalancer_id=tree.lb.id,
        l7policy_id=policy.id,
        type=body.type.value,
        compare_type=body.compare_type.value,
        key=body.key,
        value=body.value,
        invert=bool(body.invert),
        **creation_fields(project, body, generation),
    )
    check_rule(rule)
    tree.l7rules.append(rule)
    return rule


def check_rule(rule: L7Rule) -> None:
    """The rule's type, comparison, key and value together, as the renderer checks them again."""
    problem = l7_rule_problem(rule.type, rule.compare_type, rule.key, rule.value)
    if problem is not None:
        raise Invalid(_field_of(problem), problem)


def _field_of(problem: str) -> str:
    """The field an ``l7_rule_problem`` message is about."""
    if problem.startswith("type "):
        return "type"
    if "compare" in problem:
        return "compare_type"
    return "key" if " key" in problem else "value"


async def _locate(
    session: AsyncSession, ctx: RequestContext, body: L7RuleCreate, policy_id: UUID | None
) -> UUID:
    return await loadbalancer_via(session, ctx, L7Policy, "L7 policy", policy_id, "l7policy_id")


def _new(
    ctx: RequestContext, tree: Tree, body: L7RuleCreate, generation: int, policy_id: UUID | None
) -> L7Rule:
    assert policy_id is not None, "rules live under /l7policies/{l7policy_id}"
    policy = find(tree.l7policies, policy_id, "L7 policy")
    require_mutable(policy, "L7 policy")
    return new_rule(ctx, tree, policy, body, generation)


def _update(tree: Tree, rule: L7Rule, body: L7RuleUpdate) -> None:
    apply_update(rule, body)
    check_rule(rule)


def rule_out(rule: L7Rule, _: Related, ctx: RequestContext) -> L7RuleOut:
    return L7RuleOut(
        **common_fields(rule),
        type=rule.type,
        compare_type=rule.compare_type,
        key=rule.key,
        value=rule.value,
        invert=rule.invert,
    )


_THIS = {
    "path.l7policy_id": "$request.path.l7policy_id",
    "path.l7rule_id": "$response.body#/rule/id",
}

L7RULE: Resource[Any] = Resource(
    key="rule",
    plural="rules",
    title="L7 rule",
    operation="L7Rule",
    operations="L7Rules",
    path_id="l7rule_id",
    summary="an L7 rule",
    plural_summary="an L7 policy's rules",
    model=L7Rule,
    in_tree=lambda tree: tree.l7rules,
    locate=_locate,
    new=_new,
    update=_update,
    out=rule_out,
    create_body=L7RuleCreateBody,
    update_body=L7RuleUpdateBody,
    body=L7RuleBody,
    listing=L7RuleList,
    parent=Parent(L7Policy, "L7 policy", "l7policies", "l7policy_id", L7Rule.l7policy_id),
    filters={
        "l7policy_id": UUID,
        "type": str,
        "compare_type": str,
        "key": str,
        "value": str,
        "rule_value": alias_of("value", str, "openstacksdk"),
        "invert": parse_bool,
    },
    sorts=frozenset({"type", "compare_type", "key", "value"}),
    defaults={"key": None, "invert": False},
    links={
        "UpdateL7Rule": link("updateL7Rule", "Change it.", _THIS),
        "DeleteL7Rule": link("deleteL7Rule", "Remove it.", _THIS),
    },
)
