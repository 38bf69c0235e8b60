"""The private PostgreSQL helper: restarts keep data, a failover keeps acknowledged rows.

A :class:`~tests.support.postgres_node.PostgresPair` replicates synchronously, the
multi-host URL of :meth:`~tests.support.postgres_node.PostgresPair.database_url` leads
SQLAlchemy's asyncpg dialect and plain ``asyncpg.connect`` to the primary, before and
after :meth:`~tests.support.postgres_node.PostgresPair.fail_over`, and nothing is left
running afterwards.
"""

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from api_service.db.engine import plain_dsn
from tests.support.postgres_node import PostgresPair, PrivatePostgres
from tests.support.stack import eventually

pytestmark = pytest.mark.slow

ROWS = 200


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _processes_of(*nodes: PrivatePostgres) -> list[str]:
    """Command lines of live processes naming a node's directory or cluster name (the
    postmaster's arguments, its children's titles ``postgres: NAME: ...``)."""
    marks = [mark for node in nodes for mark in (str(node.base_dir), f"postgres: {node.name}:")]
    found: list[str] = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        line = cmdline.decode(errors="replace")
        if any(mark in line for mark in marks):
            found.append(f"{entry.name} {line}")
    return found


def _shared_memory_of(*postmasters: int | None) -> list[str]:
    """System V segments created by these postmasters (a killed one leaves its own)."""
    rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    return [row for row in rows if row.split()[4] in {str(pid) for pid in postmasters}]


@pytest.fixture
async def pair() -> AsyncIterator[PostgresPair]:
    pair = await asyncio.to_thread(PostgresPair.start)
    nodes = (pair.primary, pair.standby)
    postmasters = [node.pid for node in nodes]
    try:
        yield pair
    finally:
        await asyncio.to_thread(pair.destroy)
    assert not _processes_of(*nodes)
    assert not _shared_memory_of(*postmasters)
    assert not any(node.base_dir.exists() for node in nodes)


def test_a_restart_keeps_the_data_and_a_kill_is_recovered() -> None:
    node = PrivatePostgres.in_temp_dir()
    postmasters: list[int | None] = []
    try:
        node.init()
        node.start()
        node.sql("CREATE TABLE kept (n int)", "INSERT INTO kept SELECT generate_series(1, 100)")
        node.stop()
        assert not node.running
        assert not _listening(node.port)
        assert not _processes_of(node)
        node.start()
        assert node.sql("SELECT count(*) FROM kept") == "100"

        node.sql("INSERT INTO kept VALUES (101)")
        postmasters.append(node.pid)
        node.kill()
        assert not node.running
        assert not _listening(node.port)
        assert not _processes_of(node)
        node.start()  # crash recovery, at once: the killed postmaster was reaped
        assert node.sql("SELECT count(*) FROM kept") == "101"
        postmasters.append(node.pid)
        node.kill()  # and left so: destroy() cleans up after a kill too
    finally:
        node.destroy()
    assert not node.base_dir.exists()
    assert not _processes_of(node)
    assert not _shared_memory_of(*postmasters)
    node.destroy()  # idempotent


async def test_failover_keeps_every_acknowledged_row_and_the_engine_follows(
    pair: PostgresPair,
) -> None:
    await asyncio.to_thread(pair.create_database, "faults")
    url = pair.database_url("faults", driver="postgresql+asyncpg")
    old, new = pair.primary, pair.standby
    engine = create_async_engine(url, pool_pre_ping=True)
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE acknowledged (id int PRIMARY KEY)"))
        for row in range(ROWS):  # one commit each: each one acknowledged by the standby
            async with engine.begin() as connection:
                await connection.execute(text("INSERT INTO acknowledged VALUES (:id)"), {"id": row})
        assert await asyncio.to_thread(old.sql, "SELECT sync_state FROM pg_stat_replication") == (
            "sync"
        )

        took = await asyncio.to_thread(pair.fail_over)

        assert took < 5
        assert pair.primary is new
        assert pair.standby is old
        assert not old.running
        assert not _listening(old.port)
        promoted = await asyncpg.connect(new.database_url("faults"))
        try:
            assert not await promoted.fetchval("SELECT pg_is_in_recovery()")
            assert await promoted.fetchval("SELECT count(*) FROM acknowledged") == ROWS
        finally:
            await promoted.close()

        async def written() -> bool | None:
            try:
                async with engine.begin() as connection:
                    await connection.execute(
                        text("INSERT INTO acknowledged VALUES (:id) ON CONFLICT DO NOTHING"),
                        {"id": ROWS},
                    )
            except (DBAPIError, OSError):  # asyncpg's refusals come bare, not wrapped
                return None
            return True

        await eventually(written, timeout=10, what="a write through the engine after failover")
        async with engine.connect() as connection:
            port = await connection.scalar(text("SELECT inet_server_port()"))
            count = await connection.scalar(text("SELECT count(*) FROM acknowledged"))
        assert (port, count) == (new.port, ROWS + 1)
    finally:
        await engine.dispose()

    # What the service's LISTEN connection does: asyncpg.connect with the rendered URL.
    listener = await asyncpg.connect(plain_dsn(url))
    try:
        assert await listener.fetchval("SELECT inet_server_port()") == new.port
        assert not await listener.fetchval("SELECT pg_is_in_recovery()")
    finally:
        await listener.close()


async def test_a_commit_waits_for_the_standby(pair: PostgresPair) -> None:
    """Replication is synchronous: with the standby gone, a commit waits (``SyncRep``)."""
    await asyncio.to_thread(pair.standby.stop)
    monitor = await asyncpg.connect(pair.admin_dsn())
    waiting = await asyncpg.connect(pair.admin_dsn())
    warnings: list[str] = []
    waiting.add_log_listener(lambda _connection, message: warnings.append(message.message))
    try:
        pid = waiting.get_server_pid()
        commit = asyncio.create_task(waiting.execute("CREATE TABLE unacknowledged (n int)"))

        async def syncrep_wait() -> bool | None:
            event = await monitor.fetchval(
                "SELECT wait_event FROM pg_stat_activity WHERE pid = $1", pid
            )
            return True if event == "SyncRep" else None

        await eventually(syncrep_wait, timeout=10, what="the commit waiting for the standby")
        assert not commit.done()
        await monitor.execute("SELECT pg_cancel_backend($1)", pid)
        await asyncio.wait_for(commit, 10)  # committed locally all the same (a warning)

        async def warned() -> bool | None:
            return True if any("synchronous replication" in w for w in warnings) else None

        await eventually(warned, timeout=5, what="the warning about the cancelled wait")
    finally:
        await waiting.close()
        await monitor.close()
