"""Long poll: answer a GET as soon as the object leaves PENDING_* (or reaches ``wait_for``),
and how many long polls one token may hold at once.

A waiter is woken only when its load balancer's tree settles (a result or a timeout applied
to it, see ``db.notifications``), or when the feed reconnects after a lost connection.
"""

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, TypeVar
from uuid import UUID

from prometheus_client import Gauge

from api_service.db.notifications import SettledFeed
from shared.status import PENDING_STATUSES


class Settling(Protocol):
    """What a long poll watches: a tree object, or what shows one."""

    @property
    def provisioning_status(self) -> str: ...


T = TypeVar("T", bound=Settling)


class TooManyWaits(Exception):
    """The token already holds as many long polls as it may."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a token may hold at most {limit} long polls at once")
        self.limit = limit


@dataclass
class WaitSlots:
    """The long polls each token holds in this API process: at most ``per_token`` at once.

    Each replica counts its own, as with rate limits: the cap protects a process's memory
    and connections from one token.
    """

    per_token: int
    waiting: Gauge
    """Long polls held, by every token."""
    _held: Counter[UUID | None] = field(default_factory=Counter)

    @contextlib.contextmanager
    def hold(self, token_id: UUID | None) -> Iterator[None]:
        """One slot of the token's for the block; ``TooManyWaits`` when it holds them all."""
        if self._held[token_id] >= self.per_token:
            raise TooManyWaits(self.per_token)
        self._held[token_id] += 1
        self.waiting.inc()
        try:
            yield
        finally:
            self.waiting.dec()
            self._held[token_id] -= 1
            if not self._held[token_id]:
                del self._held[token_id]


def is_done(obj: Settling, wait_for: str) -> bool:
    """Whether a long poll for ``wait_for`` answers with ``obj`` as it is."""
    status = obj.provisioning_status
    return status == wait_for or status not in PENDING_STATUSES


async def wait_settled(
    feed: SettledFeed,
    loadbalancer_id: UUID,
    read: Callable[[], Awaitable[T]],
    first: tuple[T, int],
    *,
    wait_for: str,
    timeout: float,
) -> T:
    """Re-read the object each time its tree settles, until it is done or ``timeout`` passes;
    ``first`` is what was read (not done) and the feed's mark taken just before."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    obj, mark = first
    with feed.subscribe(loadbalancer_id) as settled:
        stale = feed.settled_since(loadbalancer_id, mark)
        while True:
            if stale:
                settled.clear()
                obj = await read()
            remaining = deadline - loop.time()
            if is_done(obj, wait_for) or remaining <= 0:
                return obj
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), remaining)
            stale = True
