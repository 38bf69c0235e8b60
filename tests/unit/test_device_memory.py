"""What an agent remembers of a device: orphans by inventory, late commands that change nothing."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import cast
from uuid import UUID, uuid4

import pytest

from agent_service.devices import Attempt, Devices, KnownDevice
from agent_service.drivers import Driver, DriverRegistry, Superseded
from agent_service.drivers.sim import SimDriver
from agent_service.executor import CommandExecutor
from agent_service.locks import DeviceLocks
from agent_service.metrics import AgentMetrics
from agent_service.outbound import Publisher
from agent_service.settings import AgentSettings
from agent_service.status import DeviceWatch
from shared.messages import (
    Command,
    DeviceSpec,
    DeviceSync,
    Inventory,
    LoadBalancerSpec,
    LoadBalancerStatus,
)
from shared.status import CommandAction, Outcome

GRACE = timedelta(seconds=5)


def _device() -> DeviceSpec:
    return DeviceSpec(
        id=uuid4(), name="d", driver="sim", management_url="sim://memory", report_secret="r" * 32
    )


def _sync(device: DeviceSpec, taken_at: datetime, listed: list[UUID]) -> DeviceSync:
    return DeviceSync(
        device=device,
        interval=1.0,
        issued_at=taken_at,
        inventory=Inventory(taken_at=taken_at, loadbalancers=listed),
    )


def _seen_long_ago(known: KnownDevice, *held: UUID) -> None:
    known.seen(held)
    for lb in held:
        known.first_seen[lb] -= timedelta(minutes=1)


def test_an_unlisted_load_balancer_seen_before_the_inventory_is_an_orphan() -> None:
    device = _device()
    devices = Devices()
    listed, unlisted = uuid4(), uuid4()
    devices.synced(_sync(device, datetime.now(UTC), [listed]))
    known = devices.current()[0]
    _seen_long_ago(known, listed, unlisted)
    assert known.orphans([listed, unlisted], GRACE) == [unlisted]


def test_one_seen_after_the_inventory_was_taken_is_not() -> None:
    """Its create may have committed after the inventory was read."""
    device = _device()
    devices = Devices()
    devices.synced(_sync(device, datetime.now(UTC) - timedelta(seconds=1), []))
    known = devices.current()[0]
    fresh = uuid4()
    known.seen([fresh])
    assert known.orphans([fresh], GRACE) == []


def test_nothing_is_an_orphan_without_an_inventory() -> None:
    device = _device()
    devices = Devices()
    devices.synced(DeviceSync(device=device, interval=1.0, issued_at=datetime.now(UTC)))
    known = devices.current()[0]
    held = uuid4()
    _seen_long_ago(known, held)
    assert known.orphans([held], GRACE) == []


def test_a_later_sync_without_inventory_keeps_the_last_one() -> None:
    device = _device()
    devices = Devices()
    devices.synced(_sync(device, datetime.now(UTC), []))
    devices.synced(DeviceSync(device=device, interval=1.0, issued_at=datetime.now(UTC)))
    known = devices.current()[0]
    held = uuid4()
    _seen_long_ago(known, held)
    assert known.orphans([held], GRACE) == [held]


def _spec(lb: UUID, generation: int, vip: str) -> LoadBalancerSpec:
    return LoadBalancerSpec(
        id=lb, project_id="p", admin_state_up=True, vip_address=vip, generation=generation
    )


def _command(device: DeviceSpec, lb: UUID, generation: int) -> Command:
    spec = _spec(lb, generation, "10.0.0.1")
    return Command(
        op_id=uuid4(),
        loadbalancer_id=lb,
        device_id=device.id,
        generation=generation,
        action=CommandAction.APPLY,
        driver=device.driver,
        device=device,
        spec=spec,
        result_secret="s" * 32,
        issued_at=datetime.now(UTC),
    )


def test_a_superseded_command_leaves_the_last_applied_one_desired() -> None:
    device = _device()
    devices = Devices()
    lb = uuid4()
    newer = _command(device, lb, 2)
    devices.record(newer, Attempt.APPLIED, term=devices.term)
    devices.record(_command(device, lb, 1), Attempt.SUPERSEDED, term=devices.term)
    assert devices.current()[0].desired[lb].command == newer


def test_a_superseded_command_drops_an_older_desired_one() -> None:
    """The device holds a newer generation: what this agent last ran is out of date."""
    device = _device()
    devices = Devices()
    lb = uuid4()
    devices.record(_command(device, lb, 1), Attempt.FAILED, term=devices.term)
    devices.record(_command(device, lb, 1), Attempt.SUPERSEDED, term=devices.term)
    assert devices.current()[0].desired == {}


def test_a_command_that_finishes_after_its_channel_closed_is_not_remembered() -> None:
    """Its shard may have moved to another agent: this one must not repair the device."""
    device = _device()
    devices = Devices()
    started_in = devices.term
    devices.clear()
    devices.record(_command(device, uuid4(), 1), Attempt.APPLIED, term=started_in)
    assert devices.current() == []


QUIET = 60.0


def _quiet(known: KnownDevice) -> None:
    """As if the device, just reported, last changed long ago."""
    known.changed_at -= 2 * QUIET


def test_a_quiet_device_is_reported_again_only_after_the_quiet_interval() -> None:
    known = KnownDevice(_device())
    shown = {uuid4(): LoadBalancerStatus(epoch="e")}
    assert known.due_report(shown, QUIET)
    known.reported(shown)
    _quiet(known)
    assert not known.due_report(dict(shown), QUIET)
    assert known.last_report_at is not None
    known.last_report_at -= QUIET
    assert known.due_report(shown, QUIET)


def test_a_change_or_an_unreachable_device_is_reported_at_once() -> None:
    known = KnownDevice(_device())
    lb = uuid4()
    known.reported({lb: LoadBalancerStatus(epoch="e")})
    _quiet(known)
    assert known.due_report({lb: LoadBalancerStatus(epoch="f")}, QUIET)
    assert known.due_report(None, QUIET)


def test_a_device_that_took_a_command_is_reported_on_every_read_for_a_while() -> None:
    """The API shows some statuses when the result arrives, until a report corrects them."""
    device = _device()
    devices = Devices()
    lb = uuid4()
    devices.record(_command(device, lb, 1), Attempt.APPLIED, term=devices.term)
    known = devices.current()[0]
    shown = {lb: LoadBalancerStatus(epoch="e")}
    known.reported(shown)
    _quiet(known)
    assert not known.due_report(shown, QUIET)
    devices.record(_command(device, lb, 2), Attempt.APPLIED, term=devices.term)
    known.reported(shown)
    assert known.due_report(shown, QUIET)


async def test_the_sim_appliance_never_goes_back_a_generation(tmp_path: Path) -> None:
    driver = SimDriver(AgentSettings(sim_state_dir=tmp_path))
    device = _device()
    lb = uuid4()
    await driver.apply(device, _spec(lb, 2, "10.0.0.1"))
    with pytest.raises(Superseded):
        await driver.apply(device, _spec(lb, 1, "10.0.0.9"))
    held = driver.loadbalancers("memory")[lb]
    assert (held.generation, str(held.vip_address)) == (2, "10.0.0.1")
    events = [(e["event"], e["generation"]) for e in driver.journal("memory")]
    assert events[-1] == ("apply_superseded", 1)


class _Counting:
    """A driver whose applies wait until released, counting how many run at once."""

    def __init__(self) -> None:
        self.running = 0
        self.most = 0
        self.release = asyncio.Event()
        self.started = [asyncio.Event() for _ in range(5)]

    async def apply(self, device: DeviceSpec, spec: LoadBalancerSpec) -> None:
        self.started[self.running].set()
        self.running += 1
        self.most = max(self.most, self.running)
        await self.release.wait()
        self.running -= 1


async def test_an_agent_runs_at_most_max_parallel_driver_calls() -> None:
    driver = _Counting()
    settings = AgentSettings(amqp_url="amqp://localhost/")
    registry = DriverRegistry(settings, {"sim": lambda _: cast(Driver, driver)})
    executor = CommandExecutor(
        registry,
        Devices(),
        AgentMetrics(),
        "agent-1",
        poll_interval=0.01,
        driver_timeout=5,
        max_parallel=2,
    )
    commands = [_command(_device(), uuid4(), 1) for _ in range(5)]
    runs = [asyncio.create_task(executor.execute(command, term=0)) for command in commands]
    await driver.started[1].wait()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await driver.started[2].wait()
    driver.release.set()
    results = await asyncio.gather(*runs)
    assert driver.most == 2
    assert [r.outcome for r in results] == [Outcome.ACTIVE] * 5


class _Reads:
    """A driver whose device ``hangs`` never answers a read; the others answer at once."""

    def __init__(self, hangs: UUID) -> None:
        self.hangs = hangs
        self.reads: Counter[UUID] = Counter()
        self.third_read = asyncio.Event()

    async def status(self, device: DeviceSpec) -> dict[UUID, object]:
        self.reads[device.id] += 1
        if device.id == self.hangs:
            await asyncio.Event().wait()
        if self.reads[device.id] == 3:
            self.third_read.set()
        return {}


class _Reports:
    async def publish_status(self, report: object) -> None:
        pass


async def test_a_device_that_does_not_answer_holds_up_only_its_own_reads() -> None:
    """The hung device's read times out after 2 s; the other is read every interval meanwhile."""
    devices = Devices()
    hung, quick = _device(), _device()
    for device in (hung, quick):
        devices.synced(DeviceSync(device=device, interval=60.0, issued_at=datetime.now(UTC)))
    driver = _Reads(hangs=hung.id)
    settings = AgentSettings(amqp_url="amqp://localhost/")
    registry = DriverRegistry(settings, {"sim": lambda _: cast(Driver, driver)})
    executor = CommandExecutor(
        registry,
        devices,
        AgentMetrics(),
        "agent-1",
        poll_interval=0.01,
        driver_timeout=5,
        max_parallel=4,
    )
    watch = DeviceWatch(
        devices,
        registry,
        executor,
        DeviceLocks(),
        cast(Publisher, _Reports()),
        AgentMetrics(),
        agent_id="agent-1",
        interval=0.05,
        orphan_grace=30,
    )
    watching = asyncio.create_task(watch.run())
    try:
        async with asyncio.timeout(1.5):
            await driver.third_read.wait()
        assert driver.reads[hung.id] == 1, "one read of the hung device at a time"
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
