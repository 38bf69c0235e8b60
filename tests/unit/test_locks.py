"""DeviceLocks: one FIFO lock per device, created on demand and dropped when unused.

Tasks are synchronised with asyncio events only. A task that sets its
``arrived`` event goes on into :meth:`DeviceLocks.hold` without suspending, so
once the test sees the event the task is queued on the lock. Waits that could
hang if the behaviour broke are bounded by :data:`LIMIT`.
"""

import asyncio
from uuid import UUID, uuid4

import pytest

from agent_service.locks import DeviceLocks

LIMIT = 5.0
"""Seconds before a wait that the lock should have satisfied at once counts as a hang."""


class Command:
    """A task that queues on a device's lock when told to, and records when it runs."""

    def __init__(self, locks: DeviceLocks, device: UUID, name: str, log: list[str]) -> None:
        self.name = name
        self.go = asyncio.Event()
        self.arrived = asyncio.Event()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self._locks, self._device, self._log = locks, device, log
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        await self.go.wait()
        self.arrived.set()
        async with self._locks.hold(self._device):
            self._log.append(f"start {self.name}")
            self.entered.set()
            await self.release.wait()
            self._log.append(f"end {self.name}")

    async def queue(self) -> None:
        """Let the command ask for the lock, and return once it is holding or waiting."""
        self.go.set()
        await asyncio.wait_for(self.arrived.wait(), LIMIT)

    async def hold(self) -> None:
        """Queue the command and return once it holds the lock."""
        await self.queue()
        await asyncio.wait_for(self.entered.wait(), LIMIT)

    async def finish(self) -> None:
        self.release.set()
        await asyncio.wait_for(self.task, LIMIT)


def fresh() -> tuple[DeviceLocks, UUID, list[str]]:
    """New locks, a device id, and an empty log for the commands to write to."""
    return DeviceLocks(), uuid4(), []


async def test_commands_for_one_device_run_one_at_a_time_in_arrival_order() -> None:
    locks, device, log = fresh()
    commands = [Command(locks, device, str(i), log) for i in range(5)]
    # Arrival order differs from creation order: the lock must follow arrival.
    arrival = [commands[i] for i in (3, 1, 4, 0, 2)]
    for command in arrival:
        await command.queue()
    await asyncio.wait_for(arrival[0].entered.wait(), LIMIT)
    for command in arrival:
        assert command.entered.is_set() is (command is arrival[0])
    for command in arrival:
        await asyncio.wait_for(command.entered.wait(), LIMIT)
        await command.finish()
    assert log == [line for c in arrival for line in (f"start {c.name}", f"end {c.name}")]
    assert len(locks) == 0


async def test_a_waiting_command_does_not_start_while_the_lock_is_held() -> None:
    locks, device, log = fresh()
    first, second = Command(locks, device, "first", log), Command(locks, device, "second", log)
    await first.hold()
    await second.queue()
    # Let the event loop run the waiter as much as it wants: it must stay queued.
    for _ in range(10):
        await asyncio.sleep(0)
    assert not second.entered.is_set()
    await first.finish()
    await second.hold()
    await second.finish()
    assert log == ["start first", "end first", "start second", "end second"]


async def test_different_devices_run_in_parallel() -> None:
    locks, _, log = fresh()
    one = Command(locks, uuid4(), "one", log)
    two = Command(locks, uuid4(), "two", log)
    await one.hold()
    # ``one`` still holds its lock: ``two`` can only enter if its device has its own.
    await two.hold()
    assert len(locks) == 2
    await two.finish()
    assert len(locks) == 1
    await one.finish()
    assert log == ["start one", "start two", "end two", "end one"]
    assert len(locks) == 0


async def test_entries_are_dropped_once_no_task_holds_or_waits() -> None:
    locks, device, log = fresh()
    assert len(locks) == 0
    first, second = Command(locks, device, "first", log), Command(locks, device, "second", log)
    await first.hold()
    assert len(locks) == 1
    await second.queue()
    assert len(locks) == 1
    await first.finish()
    # The waiter keeps the entry alive after the holder left.
    assert len(locks) == 1
    await second.hold()
    await second.finish()
    assert len(locks) == 0


async def test_an_exception_inside_the_lock_releases_it_and_drops_the_entry() -> None:
    locks, device = DeviceLocks(), uuid4()
    with pytest.raises(RuntimeError, match="driver failed"):
        async with locks.hold(device):
            raise RuntimeError("driver failed")
    assert len(locks) == 0
    async with asyncio.timeout(LIMIT), locks.hold(device):
        assert len(locks) == 1
    assert len(locks) == 0


async def test_a_task_cancelled_while_waiting_does_not_break_the_lock() -> None:
    locks, device, log = fresh()
    holder = Command(locks, device, "holder", log)
    cancelled = Command(locks, device, "cancelled", log)
    after = Command(locks, device, "after", log)
    await holder.hold()
    await cancelled.queue()
    await after.queue()
    cancelled.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled.task
    assert len(locks) == 1
    await holder.finish()
    await after.hold()
    await after.finish()
    assert log == ["start holder", "end holder", "start after", "end after"]
    assert len(locks) == 0
    # The device's lock is usable again at once.
    async with asyncio.timeout(LIMIT), locks.hold(device):
        assert len(locks) == 1
    assert len(locks) == 0


async def test_a_task_cancelled_just_after_being_woken_passes_the_lock_on() -> None:
    locks, device, log = fresh()
    woken = Command(locks, device, "woken", log)
    after = Command(locks, device, "after", log)
    async with locks.hold(device):
        await woken.queue()
        await after.queue()
    # Leaving ``hold`` does not suspend: ``woken`` is handed the lock but is cancelled before
    # it runs, and must pass the lock on to ``after``.
    woken.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await woken.task
    await after.hold()
    await after.finish()
    assert log == ["start after", "end after"]
    assert len(locks) == 0


async def test_the_only_waiter_cancelled_drops_the_entry_with_the_holder() -> None:
    locks, device, log = fresh()
    holder = Command(locks, device, "holder", log)
    waiter = Command(locks, device, "waiter", log)
    await holder.hold()
    await waiter.queue()
    waiter.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter.task
    await holder.finish()
    assert len(locks) == 0
    assert log == ["start holder", "end holder"]
