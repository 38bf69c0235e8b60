"""The long polls' wake-ups on real PostgreSQL: a notification wakes the waiters of its load
balancer only, and only a (re)connection of the feed wakes every waiter."""

import asyncio
import uuid

from api_service.db.engine import plain_dsn
from api_service.db.notifications import CHANNEL, SettledFeed
from tests.support.stack import Isolation

TIMEOUT = 10


async def test_only_the_waiters_of_the_settled_load_balancer_wake(isolation: Isolation) -> None:
    name = f"settled-feed-{uuid.uuid4().hex[:8]}"
    feed = SettledFeed(f"{plain_dsn(isolation.database_url)}?application_name={name}")
    a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    notifier = await isolation.db()
    with (
        feed.subscribe(a) as first_of_a,
        feed.subscribe(a) as second_of_a,
        feed.subscribe(b) as of_b,
        feed.subscribe(c) as of_c,
    ):
        waiters = (first_of_a, second_of_a, of_b, of_c)

        async def woken(*events: asyncio.Event) -> None:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), TIMEOUT)

        def clear() -> None:
            for event in waiters:
                event.clear()

        feed.start()
        try:
            await woken(*waiters)  # connected and listening: nothing missed meanwhile
            clear()
            # Notifications arrive in order: once c's waiter is woken, b's was, and a's
            # would have been had either notification woken it.
            await notifier.execute("SELECT pg_notify($1, $2)", CHANNEL, str(b))
            await notifier.execute("SELECT pg_notify($1, $2)", CHANNEL, str(c))
            await woken(of_b, of_c)
            assert not first_of_a.is_set() and not second_of_a.is_set()

            clear()
            await notifier.execute("SELECT pg_notify($1, $2)", CHANNEL, str(a))
            await notifier.execute("SELECT pg_notify($1, $2)", CHANNEL, str(c))
            await woken(first_of_a, second_of_a, of_c)
            assert not of_b.is_set()

            clear()
            terminated = await notifier.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                name,
            )
            assert terminated == 1
            await woken(*waiters)  # reconnected: every waiter reads again
        finally:
            await feed.stop()
            await notifier.close()


async def test_a_mark_tells_whether_a_tree_may_have_settled_since(isolation: Isolation) -> None:
    """What a reader that read before subscribing asks instead of reading again."""
    name = f"settled-mark-{uuid.uuid4().hex[:8]}"
    feed = SettledFeed(f"{plain_dsn(isolation.database_url)}?application_name={name}")
    a, b = uuid.uuid4(), uuid.uuid4()
    notifier = await isolation.db()
    with feed.subscribe(b) as of_b:
        feed.start()
        try:
            await asyncio.wait_for(of_b.wait(), TIMEOUT)  # listening
            of_b.clear()
            mark = feed.mark()
            assert not feed.settled_since(a, mark) and not feed.settled_since(b, mark)
            await notifier.execute("SELECT pg_notify($1, $2)", CHANNEL, str(b))
            await asyncio.wait_for(of_b.wait(), TIMEOUT)
            assert feed.settled_since(b, mark) and not feed.settled_since(a, mark)
            assert not feed.settled_since(b, feed.mark())

            of_b.clear()
            mark = feed.mark()
            await notifier.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = $1",
                name,
            )
            await asyncio.wait_for(of_b.wait(), TIMEOUT)  # reconnected
            assert feed.settled_since(a, mark)  # anything may have been missed meanwhile
        finally:
            await feed.stop()
            await notifier.close()
