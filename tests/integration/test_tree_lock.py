"""The lock of a tree (``tree.lock_loadbalancer``), on real PostgreSQL: one statement reads the
load balancer locked, its device and the kinds of child it has, and a lock that waited for a
transaction moving the load balancer to another device never pairs it with the old one."""

import asyncio
from collections.abc import AsyncIterator
from ipaddress import IPv4Address
from uuid import UUID, uuid4

import asyncpg
import pytest
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from api_service.services.tree import Locked, lock_loadbalancer
from tests.support.stack import Isolation, eventually, isolated
from tests.support.trees import sample_tree, stored


@pytest.fixture(scope="module")
async def isolation() -> AsyncIterator[Isolation]:
    async with isolated() as isolation:
        yield isolation


@pytest.fixture(scope="module")
async def engine(isolation: Isolation) -> AsyncIterator[AsyncEngine]:
    """A database of this module's own: no API runs on it."""
    url = make_url(isolation.database_url).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(url)
    yield engine
    await engine.dispose()


async def _locked(engine: AsyncEngine, lb_id: UUID) -> Locked | None:
    async with async_sessionmaker(engine, expire_on_commit=False).begin() as session:
        return await lock_loadbalancer(session, lb_id)


async def test_the_lock_reads_the_device_and_the_kinds_of_child(engine: AsyncEngine) -> None:
    sample = sample_tree(IPv4Address("192.0.2.20"))
    await stored(engine, sample)
    locked = await _locked(engine, sample.lb.id)
    assert locked is not None
    assert locked.device is not None and locked.device.id == sample.lb.device_id
    assert locked.kinds == {"Listener", "Pool", "Member", "HealthMonitor"}
    assert await _locked(engine, uuid4()) is None


async def test_a_lock_that_waited_for_a_move_has_no_device_of_the_old_place(
    engine: AsyncEngine, isolation: Isolation
) -> None:
    sample, other = sample_tree(IPv4Address("192.0.2.21")), sample_tree(IPv4Address("192.0.2.22"))
    await stored(engine, sample)
    await stored(engine, other)
    mover, watcher = await isolation.db(), await isolation.db()
    try:
        async with mover.transaction():
            await mover.execute(
                "UPDATE loadbalancers SET device_id = $1 WHERE id = $2",
                other.lb.device_id,
                sample.lb.id,
            )
            waiting = asyncio.create_task(_locked(engine, sample.lb.id))

            async def blocked() -> asyncpg.Record | None:
                found: asyncpg.Record | None = await watcher.fetchrow(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
                return found

            await eventually(blocked, timeout=10, what="the lock to wait for the move")
        locked = await asyncio.wait_for(waiting, timeout=10)
    finally:
        await mover.close()
        await watcher.close()
    assert locked is not None, "the moved load balancer was lost by the lock"
    assert locked.lb.device_id == other.lb.device_id
    assert locked.device is None or locked.device.id == other.lb.device_id
