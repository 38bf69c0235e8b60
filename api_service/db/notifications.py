"""Wake-ups when a load balancer's tree settles, and token revocations, through PostgreSQL
``LISTEN/NOTIFY``.

Writers call :func:`notify_settled` inside the transaction that applies a
result or a timeout; PostgreSQL delivers the notification on commit to every
API replica, whichever one consumed the result. Long-polling requests wait on
:class:`SettledFeed` instead of sleeping in a loop. A revocation calls
:func:`notify_revoked` the same way, so that every replica's cache of verified
tokens drops it.
"""

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterator
from typing import Protocol
from uuid import UUID

import asyncpg
from sqlalchemy import BindParameter, ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)

CHANNEL = "lbaas_settled"
REVOKED_CHANNEL = "lbaas_token_revoked"
_RECONNECT = 1.0
_REMEMBERED = 10_000
"""Load balancers whose last notification the feed remembers (for :meth:`SettledFeed.mark`)."""


async def notify_settled(session: AsyncSession, loadbalancer_id: UUID) -> None:
    await session.execute(select(settled_notice(str(loadbalancer_id))))


def settled_notice(loadbalancer_id: str | BindParameter[str]) -> ColumnElement[str]:
    """The SQL that notifies the waiters of ``loadbalancer_id``, for a statement to select."""
    return func.pg_notify(CHANNEL, loadbalancer_id)


async def notify_revoked(session: AsyncSession, token_id: UUID) -> None:
    await session.execute(select(func.pg_notify(REVOKED_CHANNEL, str(token_id))))


class Revocations(Protocol):
    """What follows token revocations (the cache of verified tokens)."""

    def revoked(self, token_id: str) -> None: ...

    def following(self, live: bool) -> None:
        """Called with True once revocations are delivered, with False when they may be lost."""


class SettledFeed:
    """Wake-ups by load balancer: a notification wakes the waiters of its load balancer only.

    A change puts part of a load balancer's tree in PENDING_* (the load balancer and the
    objects on the way to what changed), and the one transaction that applies its result or
    its timeout settles all of them: the waiters of that load balancer (of itself and of its
    children; a long poll of an object not PENDING_* answers at once) are exactly those
    whose object changed. Waiters of other load balancers are not woken. Only a
    (re)connection wakes every waiter, since notifications may have been missed meanwhile.

    A reader that reads before it subscribes (it learns the load balancer from what it read)
    takes a :meth:`mark` first and asks :meth:`settled_since` once subscribed, rather than
    reading again.
    """

    def __init__(self, dsn: str, revocations: Revocations | None = None) -> None:
        self._dsn = dsn
        self._revocations = revocations
        self._waiters: defaultdict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._count = 0
        """Notifications and (re)connections so far."""
        self._last: dict[str, int] = {}
        """The count at each load balancer's last notification, for the newest ones."""
        self._forgotten = 0
        """A mark below this one may have missed a notification (forgotten, or lost while
        disconnected)."""

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="settled-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    @contextlib.contextmanager
    def subscribe(self, loadbalancer_id: UUID) -> Iterator[asyncio.Event]:
        """An event set each time the tree settles; subscribe before reading: no wake-up is lost."""
        event = asyncio.Event()
        key = str(loadbalancer_id)
        self._waiters[key].add(event)
        try:
            yield event
        finally:
            self._waiters[key].discard(event)
            if not self._waiters[key]:
                del self._waiters[key]

    def mark(self) -> int:
        """Now, to ask :meth:`settled_since` about later."""
        return self._count

    def settled_since(self, loadbalancer_id: UUID, mark: int) -> bool:
        """Whether the tree may have settled since ``mark`` (True when that is not known)."""
        return self._forgotten > mark or self._last.get(str(loadbalancer_id), 0) > mark

    def _on_notify(self, _: object, __: int, ___: str, payload: str) -> None:
        self._count += 1
        self._last.pop(payload, None)
        self._last[payload] = self._count
        if len(self._last) > _REMEMBERED:
            self._forgotten = self._last.pop(next(iter(self._last)))
        for event in self._waiters.get(payload, ()):
            event.set()

    def _wake_all(self) -> None:
        """After a lost connection notifications may have been missed: let every waiter re-read."""
        self._count += 1
        self._forgotten = self._count
        for events in self._waiters.values():
            for event in events:
                event.set()

    async def _serve(self, connection: asyncpg.Connection) -> None:
        """Deliver notifications until the connection is lost."""
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        await connection.add_listener(CHANNEL, self._on_notify)
        if self._revocations is not None:
            await connection.add_listener(REVOKED_CHANNEL, self._on_revoked)
            self._revocations.following(True)
        self._wake_all()
        await lost.wait()

    def _on_revoked(self, _: object, __: int, ___: str, payload: str) -> None:
        if self._revocations is not None:
            self._revocations.revoked(payload)

    async def _listen(self) -> None:
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self._dsn)
                await self._serve(connection)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cannot listen for settled load balancers, retrying: %s", exc)
            finally:
                if self._revocations is not None:
                    self._revocations.following(False)
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close()
            await asyncio.sleep(_RECONNECT)
