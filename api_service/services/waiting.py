"""Long poll: answer a GET as soon as the object leaves PENDING_* (or reaches ``wait_for``)."""

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar
from uuid import UUID

from api_service.db.models import TreeObject
from api_service.db.notifications import SettledFeed
from shared.status import PENDING_STATUSES

T = TypeVar("T", bound=TreeObject)


async def wait_settled(
    feed: SettledFeed,
    loadbalancer_id: UUID,
    read: Callable[[], Awaitable[T]],
    *,
    wait_for: str,
    timeout: float,
) -> T:
    """Re-read the object each time its tree settles, until it is done or ``timeout`` passes."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    with feed.subscribe(loadbalancer_id) as settled:
        while True:
            settled.clear()
            obj = await read()
            status = obj.provisioning_status
            remaining = deadline - loop.time()
            if status == wait_for or status not in PENDING_STATUSES or remaining <= 0:
                return obj
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settled.wait(), remaining)
