"""The state machine of a load balancer's tree and the spec built from it (docs/status-rules.md).

Every test builds its ORM objects in memory (no session, no database) with
every column the code under test reads set explicitly. Objects are named after
their role (``member_a1`` is the first member of ``pool_a``) so that
:func:`provisioning` can show the whole tree's statuses at once.
"""

from ipaddress import IPv4Address, IPv6Address
from uuid import uuid4

import pytest

from api_service.db.models import (
    L7Policy,
    L7Rule,
    TreeObject,
)
from api_service.services.tree import (
    Tree,
    apply_failure,
    apply_timeout,
    build_spec,
    mark,
    mark_parents,
)
from shared.status import ProvisioningStatus
from tests.support.trees import (
    PROJECT,
    Sample,
    make_l7policy,
    make_l7rule,
    make_lb,
    make_listener,
    make_pool,
    provisioning,
    sample_tree,
)

ACTIVE = ProvisioningStatus.ACTIVE
ERROR = ProvisioningStatus.ERROR
PENDING_CREATE = ProvisioningStatus.PENDING_CREATE
PENDING_UPDATE = ProvisioningStatus.PENDING_UPDATE
PENDING_DELETE = ProvisioningStatus.PENDING_DELETE


@pytest.fixture
def sample() -> Sample:
    return sample_tree()


def settled(tree: Tree, **changes: ProvisioningStatus) -> dict[str, str]:
    """Every object ACTIVE except those named in ``changes``."""
    return {obj.name: changes.get(obj.name, ACTIVE).value for obj in tree.objects()}


# --- Tree helpers -------------------------------------------------------------------------


def test_children_are_leaves_first_and_objects_end_with_the_load_balancer(sample: Sample) -> None:
    s = sample
    children: list[TreeObject] = [s.member_a1, s.member_a2, s.member_b1, s.hm_a]
    children += [s.listener_a, s.listener_b, s.pool_a, s.pool_b]
    assert list(s.tree.children()) == children
    assert list(s.tree.objects()) == [*children, s.lb]


def test_live_children_leave_out_deleting_objects(sample: Sample) -> None:
    sample.member_a2.deleting = True
    sample.pool_b.deleting = True
    live = sample.tree.live_children()
    assert sample.member_a2 not in live
    assert sample.pool_b not in live
    assert len(live) == 6
    assert sample.lb not in live


def test_lookups_by_pool(sample: Sample) -> None:
    s = sample
    assert s.tree.pool(s.pool_b.id) is s.pool_b
    assert s.tree.pool(uuid4()) is None
    assert s.tree.listeners_of(s.pool_a.id) == [s.listener_a]
    assert s.tree.listeners_of(uuid4()) == []
    assert s.tree.members_of(s.pool_a.id) == [s.member_a1, s.member_a2]
    assert s.tree.members_of(s.pool_b.id) == [s.member_b1]
    assert s.tree.healthmonitor_of(s.pool_a.id) is s.hm_a
    assert s.tree.healthmonitor_of(s.pool_b.id) is None


def test_a_pool_shared_by_two_listeners_lists_both(sample: Sample) -> None:
    sample.listener_b.default_pool_id = sample.pool_a.id
    assert sample.tree.listeners_of(sample.pool_a.id) == [sample.listener_a, sample.listener_b]
    assert sample.tree.listeners_of(sample.pool_b.id) == []


# --- mark and mark_parents ----------------------------------------------------------------


def test_mark_sets_status_and_generation_and_clears_the_reason(sample: Sample) -> None:
    member = sample.member_a1
    member.provisioning_status = ERROR.value
    member.status_reason = "earlier failure"
    mark(member, PENDING_UPDATE, 7)
    assert member.provisioning_status == PENDING_UPDATE
    assert member.changed_generation == 7
    assert member.status_reason is None
    assert member.deleting is False


def test_mark_pending_delete_flags_the_object_as_deleting(sample: Sample) -> None:
    mark(sample.pool_b, PENDING_DELETE, 2)
    assert sample.pool_b.provisioning_status == PENDING_DELETE
    assert sample.pool_b.deleting is True


def test_marking_a_member_marks_its_pool_listener_and_load_balancer_only(sample: Sample) -> None:
    mark(sample.member_a1, PENDING_UPDATE, 2)
    mark_parents(sample.tree, sample.member_a1)
    assert provisioning(sample.tree) == settled(
        sample.tree,
        member_a1=PENDING_UPDATE,
        pool_a=PENDING_UPDATE,
        listener_a=PENDING_UPDATE,
        lb=PENDING_UPDATE,
    )
    # The parents only wait for the member: they did not change at generation 2 themselves.
    assert sample.member_a1.changed_generation == 2
    for parent in (sample.pool_a, sample.listener_a, sample.lb):
        assert parent.changed_generation == 1


def test_marking_a_health_monitor_marks_its_pool_listener_and_load_balancer(
    sample: Sample,
) -> None:
    mark(sample.hm_a, PENDING_CREATE, 2)
    mark_parents(sample.tree, sample.hm_a)
    assert provisioning(sample.tree) == settled(
        sample.tree,
        hm_a=PENDING_CREATE,
        pool_a=PENDING_UPDATE,
        listener_a=PENDING_UPDATE,
        lb=PENDING_UPDATE,
    )


def test_marking_a_pool_marks_the_listeners_using_it_and_the_load_balancer(
    sample: Sample,
) -> None:
    mark(sample.pool_b, PENDING_UPDATE, 2)
    mark_parents(sample.tree, sample.pool_b)
    assert provisioning(sample.tree) == settled(
        sample.tree, pool_b=PENDING_UPDATE, listener_b=PENDING_UPDATE, lb=PENDING_UPDATE
    )


def test_marking_a_listener_marks_only_the_load_balancer(sample: Sample) -> None:
    mark(sample.listener_a, PENDING_UPDATE, 2)
    mark_parents(sample.tree, sample.listener_a)
    assert provisioning(sample.tree) == settled(
        sample.tree, listener_a=PENDING_UPDATE, lb=PENDING_UPDATE
    )


def test_marking_the_load_balancer_itself_leaves_its_own_status(sample: Sample) -> None:
    mark(sample.lb, PENDING_DELETE, 2)
    mark_parents(sample.tree, sample.lb)
    assert provisioning(sample.tree) == settled(sample.tree, lb=PENDING_DELETE)


def test_mark_parents_keeps_a_parent_that_is_already_pending(sample: Sample) -> None:
    mark(sample.pool_a, PENDING_CREATE, 2)
    mark(sample.member_a1, PENDING_CREATE, 2)
    mark_parents(sample.tree, sample.member_a1)
    assert sample.pool_a.provisioning_status == PENDING_CREATE
    assert sample.listener_a.provisioning_status == PENDING_UPDATE


# --- apply_failure and apply_timeout ------------------------------------------------------


def test_apply_failure_errors_what_changed_at_the_generation_and_releases_the_rest(
    sample: Sample,
) -> None:
    tree = sample.tree
    mark(sample.member_a1, PENDING_UPDATE, 2)
    mark_parents(tree, sample.member_a1)
    mark(sample.pool_b, PENDING_DELETE, 2)
    mark_parents(tree, sample.pool_b)
    # A later change still in flight: not the failed generation, so it is released too.
    mark(sample.member_a2, PENDING_CREATE, 3)
    apply_failure(tree, 2, "device refused")
    assert provisioning(tree) == settled(tree, member_a1=ERROR, pool_b=ERROR)
    assert sample.member_a1.status_reason == "device refused"
    assert sample.pool_b.status_reason == "device refused"
    assert sample.pool_b.deleting is True
    for obj in (sample.member_a2, sample.pool_a, sample.listener_a, sample.listener_b, sample.lb):
        assert obj.status_reason is None


def test_apply_failure_errors_a_parent_that_changed_itself_at_the_generation(
    sample: Sample,
) -> None:
    mark(sample.pool_a, PENDING_UPDATE, 2)
    mark(sample.member_a1, PENDING_CREATE, 2)
    mark_parents(sample.tree, sample.member_a1)
    apply_failure(sample.tree, 2, "boom")
    assert provisioning(sample.tree) == settled(sample.tree, pool_a=ERROR, member_a1=ERROR)


def test_apply_failure_leaves_settled_objects_alone(sample: Sample) -> None:
    # Settled objects are not touched, even when their changed_generation matches.
    sample.hm_a.changed_generation = 2
    sample.member_b1.provisioning_status = ERROR.value
    sample.member_b1.status_reason = "older failure"
    sample.member_b1.changed_generation = 2
    mark(sample.member_a1, PENDING_UPDATE, 2)
    apply_failure(sample.tree, 2, "new failure")
    assert provisioning(sample.tree) == settled(sample.tree, member_a1=ERROR, member_b1=ERROR)
    assert sample.hm_a.status_reason is None
    assert sample.member_b1.status_reason == "older failure"
    assert sample.member_a1.status_reason == "new failure"


def test_apply_timeout_errors_every_pending_object(sample: Sample) -> None:
    tree = sample.tree
    mark(sample.member_a1, PENDING_UPDATE, 2)
    mark_parents(tree, sample.member_a1)
    mark(sample.pool_b, PENDING_DELETE, 3)
    mark_parents(tree, sample.pool_b)
    sample.member_b1.provisioning_status = ERROR.value
    sample.member_b1.status_reason = "older failure"
    apply_timeout(tree, "timed out")
    errored = {"member_a1", "pool_a", "listener_a", "pool_b", "listener_b", "lb"}
    assert provisioning(tree) == settled(tree, member_b1=ERROR, **dict.fromkeys(errored, ERROR))
    for obj in tree.objects():
        if obj.name in errored:
            assert obj.status_reason == "timed out"
    assert sample.member_b1.status_reason == "older failure"
    assert sample.member_a2.status_reason is None
    assert sample.pool_b.deleting is True


# --- build_spec ---------------------------------------------------------------------------


@pytest.mark.parametrize("vip", [IPv4Address("192.0.2.10"), IPv6Address("2001:db8::10")])
def test_spec_carries_the_load_balancer_generation_and_vip_as_a_string(
    vip: IPv4Address | IPv6Address,
) -> None:
    lb = make_lb(vip)
    lb.generation = 42
    lb.admin_state_up = False
    spec = build_spec(Tree(lb=lb))
    assert spec.id == lb.id
    assert spec.project_id == PROJECT
    dumped = spec.model_dump_json()
    assert "lb description" not in dumped and '"name"' not in dumped
    assert spec.admin_state_up is False
    assert spec.generation == 42
    assert spec.vip_address == str(vip)
    assert isinstance(spec.vip_address, str)
    assert spec.listeners == []
    assert spec.pools == []


def test_spec_lists_members_and_health_monitor_under_their_pool(sample: Sample) -> None:
    sample.member_b1.monitor_address = IPv4Address("10.9.9.9")
    sample.member_b1.monitor_port = 8080
    sample.member_b1.weight = 5
    sample.member_b1.backup = True
    spec = build_spec(sample.tree)
    pool_a, pool_b = spec.pools
    assert pool_a.id == sample.pool_a.id
    assert [m.id for m in pool_a.members] == [sample.member_a1.id, sample.member_a2.id]
    assert [m.address for m in pool_a.members] == ["10.0.0.1", "10.0.0.2"]
    assert pool_a.healthmonitor is not None
    assert pool_a.healthmonitor.id == sample.hm_a.id
    assert pool_a.healthmonitor.url_path == "/healthz"
    assert pool_b.id == sample.pool_b.id
    (member_b1,) = pool_b.members
    assert member_b1.id == sample.member_b1.id
    assert (member_b1.monitor_address, member_b1.monitor_port) == ("10.9.9.9", 8080)
    assert (member_b1.weight, member_b1.backup) == (5, True)
    assert pool_b.healthmonitor is None


def test_spec_listener_fields(sample: Sample) -> None:
    listener_a, listener_b = build_spec(sample.tree).listeners
    assert listener_a.id == sample.listener_a.id
    assert listener_a.protocol_port == 80
    assert listener_a.default_pool_id == sample.pool_a.id
    assert listener_a.insert_headers == {"X-Forwarded-For": "true"}
    assert listener_a.allowed_cidrs == ["198.51.100.0/24"]
    assert listener_b.default_pool_id == sample.pool_b.id


def test_spec_session_persistence(sample: Sample) -> None:
    sample.pool_a.session_persistence = {"type": "APP_COOKIE", "cookie_name": "sid"}
    pool_a, pool_b = build_spec(sample.tree).pools
    assert pool_a.session_persistence is not None
    assert pool_a.session_persistence.type == "APP_COOKIE"
    assert pool_a.session_persistence.cookie_name == "sid"
    assert pool_b.session_persistence is None


def test_spec_leaves_out_a_deleting_pool_and_the_listener_reference_to_it(
    sample: Sample,
) -> None:
    mark(sample.pool_b, PENDING_DELETE, 2)
    spec = build_spec(sample.tree)
    assert [p.id for p in spec.pools] == [sample.pool_a.id]
    listener_a, listener_b = spec.listeners
    assert listener_b.id == sample.listener_b.id
    assert listener_b.default_pool_id is None
    assert listener_a.default_pool_id == sample.pool_a.id


def test_spec_leaves_out_deleting_members_health_monitors_and_listeners(sample: Sample) -> None:
    mark(sample.member_a2, PENDING_DELETE, 2)
    mark(sample.hm_a, PENDING_DELETE, 2)
    mark(sample.listener_a, PENDING_DELETE, 2)
    spec = build_spec(sample.tree)
    assert [listener.id for listener in spec.listeners] == [sample.listener_b.id]
    pool_a = spec.pools[0]
    assert [m.id for m in pool_a.members] == [sample.member_a1.id]
    assert pool_a.healthmonitor is None


def test_spec_keeps_the_tree_order_of_listeners_and_pools() -> None:
    lb = make_lb()
    pools = [make_pool(lb, f"pool_{i}") for i in range(4)]
    pools.sort(key=lambda pool: pool.id, reverse=True)
    listeners = [make_listener(lb, f"listener_{i}", 80 + i, pools[i]) for i in range(4)]
    listeners.sort(key=lambda listener: listener.id, reverse=True)
    # Rotated reverse-sorted lists: neither sorted nor reverse-sorted by id.
    tree = Tree(lb=lb, listeners=listeners[1:] + listeners[:1], pools=pools[2:] + pools[:2])
    spec = build_spec(tree)
    assert [listener.id for listener in spec.listeners] == [obj.id for obj in tree.listeners]
    assert [pool.id for pool in spec.pools] == [obj.id for obj in tree.pools]
    # No sort by id gives the tree's order, so the spec cannot have sorted it.
    for ids in ([obj.id for obj in tree.listeners], [obj.id for obj in tree.pools]):
        assert ids not in (sorted(ids), sorted(ids, reverse=True))


def test_spec_does_not_change_the_tree(sample: Sample) -> None:
    mark(sample.pool_b, PENDING_DELETE, 2)
    before = provisioning(sample.tree)
    build_spec(sample.tree)
    assert provisioning(sample.tree) == before
    assert sample.listener_b.default_pool_id == sample.pool_b.id


# --- L7 policies and rules --------------------------------------------------------------------


def _with_l7(sample: Sample) -> tuple[L7Policy, L7Policy, L7Rule]:
    """Two policies of listener_a (added out of position order) and one rule of the first."""
    second = make_l7policy(sample.listener_a, "policy_2", 2, redirect_pool=sample.pool_b)
    first = make_l7policy(sample.listener_a, "policy_1", 1)
    rule = make_l7rule(first, "rule_1", "/admin")
    sample.tree.l7policies.extend([second, first])
    sample.tree.l7rules.append(rule)
    return first, second, rule


def test_marking_a_rule_marks_its_policy_listener_and_load_balancer(sample: Sample) -> None:
    _, _, rule = _with_l7(sample)
    mark(rule, PENDING_UPDATE, 2)
    mark_parents(sample.tree, rule)
    assert provisioning(sample.tree) == settled(
        sample.tree,
        rule_1=PENDING_UPDATE,
        policy_1=PENDING_UPDATE,
        listener_a=PENDING_UPDATE,
        lb=PENDING_UPDATE,
    )


def test_the_spec_lists_policies_by_position_with_their_live_rules(sample: Sample) -> None:
    first, second, rule = _with_l7(sample)
    spec = build_spec(sample.tree)
    policies = spec.listeners[0].l7policies
    assert [p.id for p in policies] == [first.id, second.id]
    assert [r.value for r in policies[0].rules] == ["/admin"]
    assert policies[1].redirect_pool_id == sample.pool_b.id
    assert spec.listeners[1].l7policies == []

    rule.deleting = True
    sample.pool_b.deleting = True
    spec = build_spec(sample.tree)
    assert spec.listeners[0].l7policies[0].rules == []
    assert spec.listeners[0].l7policies[1].redirect_pool_id is None
    second.deleting = True
    assert [p.id for p in build_spec(sample.tree).listeners[0].l7policies] == [first.id]
