"""Idempotency-Keys older than 24 h are purged, in batches, again and again (security
review, issue 11, finding 8)."""

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from tests.support.stack import Api, Isolation, eventually, isolated, running

EXPIRED = 2_500
"""More than one batch of the purge."""


async def _insert(isolation: Isolation, owner: str, count: int, age: timedelta) -> None:
    """``count`` stored answers of ``owner``, written ``age`` ago."""
    connection = await isolation.db()
    try:
        await connection.execute(
            "INSERT INTO idempotency_keys (owner, key, request_hash, status_code, headers, body,"
            " created_at) SELECT $1, 'k-' || n, repeat('0', 64), 202, '{}', '{}',"
            " now() - $3::interval FROM generate_series(1, $2) AS n",
            owner,
            count,
            age,
        )
    finally:
        await connection.close()


async def _count(isolation: Isolation, owner: str) -> int:
    rows = await isolation.fetch(
        "SELECT count(*) AS n FROM idempotency_keys WHERE owner = $1", owner
    )
    count: int = rows[0]["n"]
    return count


def _purged(isolation: Isolation, owner: str) -> Callable[[], Awaitable[bool | None]]:
    async def probe() -> bool | None:
        return True if await _count(isolation, owner) == 0 else None

    return probe


async def test_keys_older_than_a_day_are_purged(log_dir: Path) -> None:
    async with isolated() as isolation:
        await _insert(isolation, "expired", EXPIRED, timedelta(hours=25))
        await _insert(isolation, "fresh", 3, timedelta(hours=23))
        api = Api(isolation.api_env(idempotency_purge_interval=0.2), log_dir)
        async with running(api):
            api.start()
            await api.wait_ready("/readyz")
            await eventually(_purged(isolation, "expired"), timeout=20, what="the expired keys")
            # Not only at start-up: a key that expires later goes too.
            await _insert(isolation, "expired-later", 1, timedelta(hours=24, seconds=1))
            await eventually(_purged(isolation, "expired-later"), timeout=20, what="a later one")
            assert await _count(isolation, "fresh") == 3
