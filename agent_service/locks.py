"""One FIFO lock per device, so that commands for a device run one at a time in order."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from uuid import UUID


@dataclass
class _DeviceLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    """Tasks holding or waiting for the lock; at zero the entry is dropped."""


class DeviceLocks:
    """Locks created on demand and dropped once no task holds or waits on them.

    ``asyncio.Lock`` wakes its waiters in the order they called ``acquire``,
    and :meth:`hold` reaches ``acquire`` without suspending first, so tasks
    started in message arrival order run in that order.
    """

    def __init__(self) -> None:
        self._locks: dict[UUID, _DeviceLock] = {}

    @asynccontextmanager
    async def hold(self, device_id: UUID) -> AsyncIterator[None]:
        entry = self._locks.get(device_id)
        if entry is None:
            entry = self._locks[device_id] = _DeviceLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[device_id]

    def __len__(self) -> int:
        """Devices with a command running or waiting."""
        return len(self._locks)
