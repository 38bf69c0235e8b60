"""The devices this agent looks after, and the last command it ran for each load balancer.

An agent learns a device from the commands and the API's device syncs it
receives, i.e. from the shards it is the active consumer of, and forgets it
once it has heard nothing of it for a while (the shard moved, or the device
went). What it learned holds only while its consumer channel lasts: once the
channel closes the shards may go to another agent, so :meth:`Devices.clear`
forgets everything rather than let two agents repair one device with
different commands.

Orphans: the last sync's inventory lists the load balancers the database places on
the device. One the device holds that is not listed, although the agent saw it on
the device more than ``orphan_grace`` before the inventory was taken, was deleted
or moved away while the device was out of reach: :meth:`KnownDevice.orphans`.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from shared.messages import Command, DeviceSpec, DeviceSync, Inventory, LoadBalancerStatus
from shared.status import CommandAction

FORGET_AFTER_SYNCS = 3
"""A device not heard of for this many of its sync intervals is forgotten."""
FIRST_SYNC_INTERVAL = 10.0
"""The sync interval assumed until a device's first sync says it."""
MAX_RETRY_DELAY = 300.0

Shown = dict[UUID, LoadBalancerStatus]
"""What a device shows of each load balancer it holds, as a status report carries it."""


class Attempt(StrEnum):
    """How the last attempt at a command went."""

    APPLIED = "applied"
    REJECTED = "rejected"
    """The device refused the configuration itself: trying again gives the same answer."""
    FAILED = "failed"
    """The device could not be reached or failed: worth trying again once it answers."""
    SUPERSEDED = "superseded"
    """The device holds a newer generation: the command came late and changed nothing."""


@dataclass
class Desired:
    """The last command for one load balancer, how it went, and what the device should show."""

    command: Command
    attempt: Attempt
    digest: str | None = None
    """Of the spec as the driver would apply it; computed once, when first compared."""
    failures: int = 0
    retry_at: float = 0.0
    """Not tried again before this (monotonic) time: failures back off."""


@dataclass
class KnownDevice:
    spec: DeviceSpec
    sync_interval: float = FIRST_SYNC_INTERVAL
    heard_at: float = field(default_factory=time.monotonic)
    failures: int = 0
    """Status reads that failed in a row."""
    desired: dict[UUID, Desired] = field(default_factory=dict)
    inventory: Inventory | None = None
    """The last sync's; None until a sync carried one."""
    first_seen: dict[UUID, datetime] = field(default_factory=dict)
    """When each load balancer the device holds was first seen on it (this agent's clock)."""
    last_report: Shown | None = None
    last_report_at: float | None = None
    """Monotonic; None until a report of the device was published."""
    changed_at: float = field(default_factory=time.monotonic)
    """Monotonic: when a command for the device was last recorded, or what it shows changed."""

    def heard(self) -> None:
        self.heard_at = time.monotonic()

    def seen(self, held: Iterable[UUID]) -> None:
        """A read of the device found ``held``."""
        now = datetime.now(UTC)
        self.first_seen = {lb: self.first_seen.get(lb, now) for lb in held}

    def orphans(self, held: Iterable[UUID], grace: timedelta) -> list[UUID]:
        """What of ``held`` the inventory says the device should not hold, sure to be
        older than the inventory: seen before it was taken, by more than ``grace``."""
        if self.inventory is None:
            return []
        listed = set(self.inventory.loadbalancers)
        before = self.inventory.taken_at - grace
        return [
            lb
            for lb in held
            if lb not in listed and lb in self.first_seen and self.first_seen[lb] < before
        ]

    def due_report(self, shown: Shown | None, quiet_after: float) -> bool:
        """Whether to report ``shown`` (None: unreachable): always when it changed; while the
        device is busy (it changed, or took a command, within ``quiet_after`` s), since the
        API sets some statuses when a result arrives and a report then corrects them; once it
        is quiet, every ``quiet_after`` s."""
        if self.last_report_at is None or shown != self.last_report:
            return True
        now = time.monotonic()
        return now - self.changed_at < quiet_after or now - self.last_report_at >= quiet_after

    def reported(self, shown: Shown | None) -> None:
        now = time.monotonic()
        if self.last_report_at is None or shown != self.last_report:
            self.changed_at = now
        self.last_report = shown
        self.last_report_at = now

    def forget(self, loadbalancer_id: UUID) -> None:
        """The device no longer holds the load balancer, and should not."""
        self.desired.pop(loadbalancer_id, None)
        self.first_seen.pop(loadbalancer_id, None)

    @property
    def forgotten(self) -> bool:
        return time.monotonic() - self.heard_at > FORGET_AFTER_SYNCS * self.sync_interval


class Devices:
    def __init__(self) -> None:
        self._devices: dict[UUID, KnownDevice] = {}
        self.term = 0
        """Counts :meth:`clear` calls: what a command started in an earlier term learned is
        not recorded (its shard may be another agent's by the time it finishes)."""

    def synced(self, sync: DeviceSync) -> None:
        """A sync carries the device as it is now: its spec replaces the one known."""
        known = self._devices.get(sync.device.id)
        if known is None:
            known = self._devices[sync.device.id] = KnownDevice(sync.device)
        known.spec = sync.device
        known.sync_interval = sync.interval
        if sync.inventory is not None:
            known.inventory = sync.inventory
        known.heard()

    def heard_of(self, device: DeviceSpec, *, term: int) -> None:
        """A command for the device arrived in ``term``. Its device spec may be older than a
        sync's: it is used only for a device not known yet."""
        if term != self.term:
            return
        known = self._devices.get(device.id)
        if known is None:
            known = self._devices[device.id] = KnownDevice(device)
        known.heard()

    def record(self, command: Command, attempt: Attempt, *, term: int) -> None:
        """What the device should now hold of the command's load balancer; nothing when the
        command started in an earlier ``term``."""
        if term != self.term:
            return
        known = self._devices.get(command.device_id)
        if known is None:
            known = self._devices[command.device_id] = KnownDevice(command.device)
        known.changed_at = time.monotonic()
        if attempt is Attempt.SUPERSEDED:
            stale = known.desired.get(command.loadbalancer_id)
            if stale is not None and stale.command.generation <= command.generation:
                del known.desired[command.loadbalancer_id]
            return
        previous = known.desired.get(command.loadbalancer_id)
        if command.action is CommandAction.DELETE and attempt is Attempt.APPLIED:
            known.desired.pop(command.loadbalancer_id, None)
            return
        desired = Desired(command, attempt)
        if attempt is Attempt.FAILED and previous is not None and previous.command == command:
            desired.failures = previous.failures + 1
            delay = min(2.0**desired.failures, MAX_RETRY_DELAY)
            desired.retry_at = time.monotonic() + delay
        known.desired[command.loadbalancer_id] = desired

    def current(self) -> list[KnownDevice]:
        """Every device still known; those not heard of for long are forgotten."""
        for device_id in [d.spec.id for d in self._devices.values() if d.forgotten]:
            del self._devices[device_id]
        return list(self._devices.values())

    def clear(self) -> None:
        self._devices.clear()
        self.term += 1

    def __len__(self) -> int:
        return len(self._devices)
