"""Reading every known device each interval: status reports out, drift repaired.

Each interval the agent reads each device it looks after (see
:mod:`agent_service.devices`), each in its own task: a device slow to answer,
or being repaired, delays only its own next read. It publishes a
``StatusReport`` of what the device shows (health by object and counters) on
every read while the device is busy, and every ``QUIET_AFTER`` reads once it is
quiet (:meth:`~agent_service.devices.KnownDevice.due_report`), so that an agent
looking after many quiet devices does not keep the API busy with reports that
change nothing. A device that fails ``OFFLINE_AFTER`` reads in a row is reported
unreachable (the API shows it ``OFFLINE``) until it answers again.

Drift: when what a device holds of a load balancer is not what the agent last
applied (it was unreachable then, or lost its state), or the last attempt
failed, the agent applies that command again under the device's lock and
publishes its result, which heals an operation that failed because the
device was away. Failures back off (2, 4, 8 … s, at most 5 min); a
configuration the device itself refused (``drivers.Refused``) is not tried
again.

Orphans (:meth:`agent_service.devices.KnownDevice.orphans`) are deleted from the
device under its lock, after a fresh read.
"""

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

from agent_service.devices import Attempt, Desired, Devices, KnownDevice
from agent_service.drivers import (
    DeviceState,
    Driver,
    DriverRegistry,
    Refused,
    UnknownDriver,
    read_status,
)
from agent_service.executor import CommandExecutor, log_context
from agent_service.locks import DeviceLocks
from agent_service.metrics import AgentMetrics
from agent_service.outbound import NotPublished, Publisher
from shared.messages import StatusReport
from shared.status import CommandAction

log = logging.getLogger(__name__)

OFFLINE_AFTER = 3
QUIET_AFTER = 12
MIN_READ_TIMEOUT = 2.0


class DeviceWatch:
    def __init__(
        self,
        devices: Devices,
        registry: DriverRegistry,
        executor: CommandExecutor,
        locks: DeviceLocks,
        publisher: Publisher,
        metrics: AgentMetrics,
        *,
        agent_id: str,
        interval: float,
        orphan_grace: float,
    ) -> None:
        self._metrics = metrics
        self._devices = devices
        self._registry = registry
        self._executor = executor
        self._locks = locks
        self._publisher = publisher
        self._agent_id = agent_id
        self._interval = interval
        self._read_timeout = max(interval, MIN_READ_TIMEOUT)
        self._orphan_grace = timedelta(seconds=orphan_grace)

    async def run(self) -> None:
        """Every interval, start a read of each known device whose last read is over."""
        reading: dict[UUID, asyncio.Task[None]] = {}
        try:
            while True:
                await asyncio.sleep(self._interval)
                reading = {device: task for device, task in reading.items() if not task.done()}
                watched = self._devices.current()
                for known in watched:
                    if known.spec.id not in reading:
                        reading[known.spec.id] = asyncio.create_task(
                            self.watch(known), name=f"watch-{known.spec.id}"
                        )
                down = sum(known.failures >= OFFLINE_AFTER for known in watched)
                self._metrics.devices.labels("true").set(len(watched) - down)
                self._metrics.devices.labels("false").set(down)
        finally:
            for task in reading.values():
                task.cancel()
            await asyncio.gather(*reading.values(), return_exceptions=True)

    async def watch(self, known: KnownDevice) -> None:
        try:
            await self._watch(known)
        except Exception:
            log.exception("watching a device failed", extra={"device_id": known.spec.id})

    async def _watch(self, known: KnownDevice) -> None:
        """Read the device once: report it, or count the failure; repair what drifted."""
        device = known.spec
        try:
            driver = self._registry.get(device.driver)
            state = await self._read(driver, known)
            if known.orphans(state, self._orphan_grace):
                state = await self._remove_orphans(driver, known)
            if _drifted(driver, known, state):
                state = await self._repair(driver, known)
        except UnknownDriver as exc:
            log.warning("not watching the device: %s", exc, extra={"device_id": device.id})
            return
        except Exception as exc:
            known.failures += 1
            if known.failures == OFFLINE_AFTER:
                log.warning(
                    "device %s did not answer %d times; reporting it OFFLINE: %s",
                    device.name,
                    OFFLINE_AFTER,
                    _reason(exc),
                    extra={"device_id": device.id},
                )
            if known.failures >= OFFLINE_AFTER:
                await self._publish(known, None)
            return
        if known.failures >= OFFLINE_AFTER:
            log.info("device %s answers again", device.name, extra={"device_id": device.id})
        known.failures = 0
        await self._publish(known, state)

    async def _read(self, driver: Driver, known: KnownDevice) -> DeviceState:
        async with asyncio.timeout(self._read_timeout):
            state = await read_status(driver, known.spec)
        known.seen(state)
        return state

    async def _remove_orphans(self, driver: Driver, known: KnownDevice) -> DeviceState:
        """Under the device's lock, so that no command runs meanwhile."""
        async with self._locks.hold(known.spec.id):
            state = await self._read(driver, known)
            for loadbalancer_id in known.orphans(state, self._orphan_grace):
                log.warning(
                    "device %s holds load balancer %s, which the database does not place "
                    "there; removing it",
                    known.spec.name,
                    loadbalancer_id,
                    extra={"device_id": known.spec.id, "loadbalancer_id": loadbalancer_id},
                )
                await self._executor.remove_orphan(known.spec, loadbalancer_id)
                known.forget(loadbalancer_id)
                self._metrics.orphans_removed.inc()
            return await self._read(driver, known)

    async def _repair(self, driver: Driver, known: KnownDevice) -> DeviceState:
        """Under the device's lock, so no command runs meanwhile: apply again what differs."""
        term = self._devices.term
        async with self._locks.hold(known.spec.id):
            if term != self._devices.term:
                return await self._read(driver, known)
            state = await self._read(driver, known)
            for desired in list(known.desired.values()):
                if not _differs(driver, desired, state):
                    continue
                command = desired.command.model_copy(update={"device": known.spec})
                log.warning(
                    "device %s does not hold %s as last applied; applying it again",
                    known.spec.name,
                    command.loadbalancer_id,
                    extra=log_context(command),
                )
                self._metrics.repairs.inc()
                result = await self._executor.execute(command, term=term)
                try:
                    await self._publisher.publish(result)
                except NotPublished as exc:
                    log.warning("repair result not published: %s", exc, extra=log_context(command))
            return await self._read(driver, known)

    async def _publish(self, known: KnownDevice, state: DeviceState | None) -> None:
        """Report what the device shows, unless the last report said the same lately."""
        shown = None if state is None else {lb: observed.status for lb, observed in state.items()}
        if not known.due_report(shown, QUIET_AFTER * self._interval):
            return
        report = StatusReport(
            device_id=known.spec.id,
            report_secret=known.spec.report_secret,
            agent_id=self._agent_id,
            reported_at=datetime.now(UTC),
            reachable=shown is not None,
            loadbalancers=shown or {},
        )
        try:
            await self._publisher.publish_status(report)
        except NotPublished as exc:
            log.warning("status report not published: %s", exc, extra={"device_id": known.spec.id})
            return
        known.reported(shown)


def _drifted(driver: Driver, known: KnownDevice, state: DeviceState) -> bool:
    return any(_differs(driver, desired, state) for desired in known.desired.values())


def _differs(driver: Driver, desired: Desired, state: DeviceState) -> bool:
    """The command is worth applying again: the device differs, or the last attempt failed."""
    if desired.attempt is Attempt.REJECTED or time.monotonic() < desired.retry_at:
        return False
    if desired.attempt is Attempt.FAILED:
        return True
    command = desired.command
    observed = state.get(command.loadbalancer_id)
    if command.action is CommandAction.DELETE:
        return observed is not None
    if desired.digest is None:
        try:
            desired.digest = driver.digest(command.spec)
        except Refused:
            desired.attempt = Attempt.REJECTED
            return False
    return observed is None or observed.digest != desired.digest


def _reason(exc: Exception) -> str:
    return str(exc) or type(exc).__name__
