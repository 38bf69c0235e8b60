"""The devices this agent looks after, and the last command it ran for each load balancer.

An agent learns a device from the commands and the API's device syncs it
receives, i.e. from the shards it is the active consumer of. What it learned
holds only while its broker connection lasts: once the connection drops, the
shards may have moved to another agent, so :meth:`Devices.clear` forgets
everything rather than let two agents repair one device with different
commands.
"""

import time
from dataclasses import dataclass, field
from enum import StrEnum
from uuid import UUID

from shared.messages import Command, DeviceSpec, DeviceSync

EXPIRY_SYNCS = 3
"""A device not synced for this many of its sync intervals is forgotten (it moved or went)."""


class Outcome(StrEnum):
    APPLIED = "applied"
    REJECTED = "rejected"
    """The device refused the configuration itself: trying again gives the same answer."""
    FAILED = "failed"
    """The device could not be reached or failed: worth trying again once it answers."""


@dataclass
class Desired:
    """The last command for one load balancer, how it went, and what the device should show."""

    command: Command
    outcome: Outcome
    digest: str | None = None
    """Of the spec as the driver would apply it; computed once, when first compared."""


@dataclass
class KnownDevice:
    spec: DeviceSpec
    expires_at: float | None = None
    failures: int = 0
    """Status reads that failed in a row."""
    desired: dict[UUID, Desired] = field(default_factory=dict)


class Devices:
    def __init__(self) -> None:
        self._devices: dict[UUID, KnownDevice] = {}

    def learn(self, device: DeviceSpec) -> KnownDevice:
        known = self._devices.get(device.id)
        if known is None:
            known = self._devices[device.id] = KnownDevice(device)
        known.spec = device
        return known

    def synced(self, sync: DeviceSync) -> None:
        known = self.learn(sync.device)
        known.expires_at = time.monotonic() + EXPIRY_SYNCS * sync.interval

    def record(self, command: Command, outcome: Outcome) -> None:
        """What the device should now hold of the command's load balancer."""
        known = self.learn(command.device)
        if command.action == "delete" and outcome is Outcome.APPLIED:
            known.desired.pop(command.loadbalancer_id, None)
        else:
            known.desired[command.loadbalancer_id] = Desired(command, outcome)

    def current(self) -> list[KnownDevice]:
        """Every device still known; expired ones are forgotten."""
        now = time.monotonic()
        for device_id in [
            d.spec.id for d in self._devices.values() if d.expires_at and d.expires_at < now
        ]:
            del self._devices[device_id]
        return list(self._devices.values())

    def clear(self) -> None:
        self._devices.clear()

    def __len__(self) -> int:
        return len(self._devices)
