"""A successful apply settles the tree in SQL (``tree.settling``), on real PostgreSQL: deleted
objects go, every other object is ACTIVE, operating statuses follow docs/status-rules.md, and
rows with nothing to change are not written."""

from collections.abc import AsyncIterator, Collection
from ipaddress import IPv4Address
from uuid import UUID

import pytest
from sqlalchemy import literal, make_url, select
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from api_service.db.models import L7Policy, L7Rule, LoadBalancer, TreeObject
from api_service.services.tree import Tree, load_tree, mark, mark_parents, settling
from shared.status import OperatingStatus, ProvisioningStatus
from tests.support.stack import isolated
from tests.support.trees import (
    Sample,
    make_l7policy,
    make_l7rule,
    operating,
    provisioning,
    sample_tree,
    stored,
)

ACTIVE = ProvisioningStatus.ACTIVE
ERROR = ProvisioningStatus.ERROR
PENDING_UPDATE = ProvisioningStatus.PENDING_UPDATE
PENDING_DELETE = ProvisioningStatus.PENDING_DELETE
_vips = iter(range(10, 250))


@pytest.fixture(scope="module")
async def engine() -> AsyncIterator[AsyncEngine]:
    """A database of this module's own: no API runs on it."""
    async with isolated() as isolation:
        url = make_url(isolation.database_url).set(drivername="postgresql+asyncpg")
        engine = create_async_engine(url)
        yield engine
        await engine.dispose()


@pytest.fixture
def sample() -> Sample:
    return sample_tree(IPv4Address(f"192.0.2.{next(_vips)}"))


async def settled_tree(engine: AsyncEngine, lb_id: UUID) -> Tree:
    """Runs the settling statement, then reads the tree back."""
    async with engine.begin() as connection:
        await connection.execute(select(literal(1)).add_cte(*settling()), {"tree_id": lb_id})
    return await read_tree(engine, lb_id)


async def read_tree(engine: AsyncEngine, lb_id: UUID) -> Tree:
    async with async_sessionmaker(engine)() as session:
        return await load_tree(session, await session.get_one(LoadBalancer, lb_id))


def with_l7(sample: Sample) -> tuple[L7Policy, L7Rule, L7Rule]:
    """A policy on ``listener_a`` (redirecting to ``pool_b``) with two rules, in the sample."""
    policy = make_l7policy(sample.listener_a, "policy_a", 1, redirect_pool=sample.pool_b)
    first, second = (make_l7rule(policy, name, f"/{name}") for name in ("rule_a1", "rule_a2"))
    sample.tree.l7policies.append(policy)
    sample.tree.l7rules.extend((first, second))
    return policy, first, second


def names(sample: Sample, *, but: Collection[str] = ()) -> set[str]:
    """The sample's object names, but those given."""
    return {obj.name for obj in sample.tree.objects()} - set(but)


async def test_every_object_is_active_and_reasons_cleared(
    engine: AsyncEngine, sample: Sample
) -> None:
    mark(sample.member_a1, PENDING_UPDATE, 2)
    mark_parents(sample.tree, sample.member_a1)
    sample.member_b1.provisioning_status = ERROR.value
    sample.member_b1.status_reason = "earlier failure"
    await stored(engine, sample)
    tree = await settled_tree(engine, sample.lb.id)
    assert provisioning(tree) == dict.fromkeys(names(sample), ACTIVE.value)
    assert all(obj.status_reason is None for obj in tree.objects())


async def test_deleting_objects_go_and_nothing_else(engine: AsyncEngine, sample: Sample) -> None:
    mark(sample.member_a2, PENDING_DELETE, 2)
    mark_parents(sample.tree, sample.member_a2)
    # A delete the reaper already moved to ERROR is still removed.
    mark(sample.hm_a, PENDING_DELETE, 1)
    sample.hm_a.provisioning_status = ERROR.value
    await stored(engine, sample)
    tree = await settled_tree(engine, sample.lb.id)
    assert provisioning(tree) == dict.fromkeys(
        names(sample, but={"member_a2", "hm_a"}), ACTIVE.value
    )


async def test_a_deleted_pool_leaves_its_listener_active_without_it(
    engine: AsyncEngine, sample: Sample
) -> None:
    """The pool's members and monitor go with it, and the listener that used it is both
    settled and left without a default pool (``ON DELETE SET NULL``), in one statement."""
    for obj in (sample.pool_a, sample.member_a1, sample.member_a2, sample.hm_a):
        mark(obj, PENDING_DELETE, 2)
    mark_parents(sample.tree, sample.pool_a)
    assert sample.listener_a.provisioning_status == PENDING_UPDATE
    await stored(engine, sample)
    tree = await settled_tree(engine, sample.lb.id)
    assert provisioning(tree) == {
        "listener_a": "ACTIVE",
        "listener_b": "ACTIVE",
        "pool_b": "ACTIVE",
        "member_b1": "ACTIVE",
        "lb": "ACTIVE",
    }
    listener_a = next(obj for obj in tree.listeners if obj.name == "listener_a")
    assert listener_a.default_pool_id is None


async def test_reported_operating_statuses_stay(engine: AsyncEngine, sample: Sample) -> None:
    reported: dict[TreeObject, OperatingStatus] = {
        sample.member_a1: OperatingStatus.ERROR,
        sample.pool_a: OperatingStatus.DEGRADED,
        sample.hm_a: OperatingStatus.NO_MONITOR,
        sample.member_b1: OperatingStatus.DRAINING,
    }
    for obj, status in reported.items():
        obj.operating_status = status.value
    sample.lb.provisioning_status = PENDING_UPDATE.value
    await stored(engine, sample)
    tree = await settled_tree(engine, sample.lb.id)
    assert operating(tree) == {
        obj.name: reported.get(obj, OperatingStatus.ONLINE).value for obj in sample.tree.objects()
    }


async def test_offline_becomes_online(engine: AsyncEngine, sample: Sample) -> None:
    for obj in sample.tree.objects():
        obj.operating_status = OperatingStatus.OFFLINE.value
    await stored(engine, sample)
    tree = await settled_tree(engine, sample.lb.id)
    assert set(operating(tree).values()) == {OperatingStatus.ONLINE.value}


async def test_disabled_objects_are_offline(engine: AsyncEngine, sample: Sample) -> None:
    for obj in (sample.member_a1, sample.listener_b, sample.lb):
        obj.admin_state_up = False
    sample.member_a1.operating_status = OperatingStatus.ERROR.value
    await stored(engine, sample)
    tree = await settled_tree(engine, sample.lb.id)
    offline = {"member_a1", "listener_b", "lb"}
    assert operating(tree) == {
        name: (OperatingStatus.OFFLINE if name in offline else OperatingStatus.ONLINE).value
        for name in names(sample)
    }


async def test_rows_with_nothing_to_change_keep_their_etag(
    engine: AsyncEngine, sample: Sample
) -> None:
    mark(sample.member_a1, PENDING_UPDATE, 2)
    mark_parents(sample.tree, sample.member_a1)
    await stored(engine, sample)
    before = {obj.name: obj.updated_at for obj in (await read_tree(engine, sample.lb.id)).objects()}
    tree = await settled_tree(engine, sample.lb.id)
    after = {obj.name: obj.updated_at for obj in tree.objects()}
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"member_a1", "pool_a", "listener_a", "lb"}


async def test_l7_objects_settle_and_a_deleted_rule_goes(
    engine: AsyncEngine, sample: Sample
) -> None:
    policy, kept, deleted = with_l7(sample)
    mark(deleted, PENDING_DELETE, 2)
    mark_parents(sample.tree, deleted)
    mark(kept, PENDING_UPDATE, 2)
    assert policy.provisioning_status == PENDING_UPDATE
    await stored(engine, sample)
    tree = await settled_tree(engine, sample.lb.id)
    assert provisioning(tree) == dict.fromkeys(names(sample, but={"rule_a2"}), ACTIVE.value)
    assert [rule.name for rule in tree.l7rules] == ["rule_a1"]


async def test_another_tree_is_left_as_it_is(engine: AsyncEngine, sample: Sample) -> None:
    """Only the load balancer the statement is bound to settles; every row of the other tree,
    with the same kinds of objects in flight, stays as it was."""
    other = sample_tree(IPv4Address(f"192.0.2.{next(_vips)}"))
    for each in (sample, other):
        with_l7(each)
        for obj in each.tree.objects():
            mark(obj, PENDING_UPDATE, 2)
        mark(each.member_a2, PENDING_DELETE, 2)
        mark(each.tree.l7rules[0], PENDING_DELETE, 2)
        await stored(engine, each)
    before = await read_tree(engine, other.lb.id)
    await settled_tree(engine, sample.lb.id)
    after = await read_tree(engine, other.lb.id)
    assert provisioning(after) == provisioning(before)
    assert {obj.name: obj.updated_at for obj in after.objects()} == {
        obj.name: obj.updated_at for obj in before.objects()
    }
    assert names(other) == {obj.name for obj in after.objects()}
