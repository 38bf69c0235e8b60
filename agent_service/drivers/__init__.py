"""The driver contract, the registry that finds drivers by name, and how the agent runs them.

A driver turns a load balancer's desired state into configuration on one kind
of device. Its ``apply``, ``delete`` and ``poll`` may be plain functions (run
in a worker thread) or coroutine functions (awaited). Each returns ``None``
when the device is done, or :class:`InProgress` when the device's own API is
asynchronous; the agent then calls ``poll`` with the handle until it returns
``None``. Any exception is a failure whose message becomes the ``ERROR``
result's ``error``, except :class:`Superseded`. Calls are idempotent: applying
the same spec twice is a no-op; a device never goes back to an older
generation of a load balancer (a command redelivered late raises
:class:`Superseded`).

``status`` tells what the device holds of each load balancer (a digest of its
configuration, health, counters) and ``digest`` what it would hold for a
spec, so that the agent can find and repair drift.

A driver that is a provider (:class:`DeclaresProvider`) says what it can do in its
``provider`` declaration, which the agent announces to the API; a driver without one is
never announced, and the API holds it to ``shared.capabilities.BASELINE``.
"""

import asyncio
import hashlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from importlib.metadata import entry_points
from typing import Protocol, cast, runtime_checkable
from uuid import UUID

from agent_service.settings import AgentSettings
from shared.capabilities import ProviderDeclaration
from shared.messages import DeviceSpec, LoadBalancerSpec, LoadBalancerStatus

ENTRY_POINT_GROUP = "lbaas.drivers"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InProgress:
    """The device accepted the work and will finish later; ``handle`` identifies it to ``poll``."""

    handle: str


class Refused(Exception):
    """The device refused the configuration itself (the tenant's to fix): retrying cannot help.

    Any other exception is a failure of the device or of reaching it.
    """


class Superseded(Exception):
    """The device holds a newer generation of the load balancer than the spec's: applying it
    would go back. The command changes nothing and is done."""


DriverOutcome = InProgress | None
DriverReturn = DriverOutcome | Awaitable[DriverOutcome]
DriverCall = Callable[[], DriverReturn]


@dataclass(frozen=True)
class Observed:
    """What a device holds of one load balancer."""

    digest: str
    status: LoadBalancerStatus


DeviceState = dict[UUID, Observed]


class Driver(Protocol):
    def apply(self, device: DeviceSpec, spec: LoadBalancerSpec) -> DriverReturn: ...

    def delete(self, device: DeviceSpec, loadbalancer_id: UUID) -> DriverReturn: ...

    def poll(self, device: DeviceSpec, handle: str) -> DriverReturn: ...

    def status(self, device: DeviceSpec) -> DeviceState | Awaitable[DeviceState]:
        """Every load balancer on the device; raises when the device does not answer."""
        ...

    def digest(self, spec: LoadBalancerSpec) -> str:
        """The digest :meth:`status` shows once ``spec`` is applied."""
        ...


@runtime_checkable
class DeclaresProvider(Protocol):
    provider: ProviderDeclaration
    """Its name (the entry point's), description and capabilities."""


def spec_digest(spec: LoadBalancerSpec) -> str:
    """The digest of a spec itself, for drivers that store specs as they are."""
    return "sha256:" + hashlib.sha256(spec.model_dump_json().encode()).hexdigest()


DriverFactory = Callable[[AgentSettings], Driver]


class UnknownDriver(LookupError):
    def __init__(self, name: str, installed: list[str]) -> None:
        self.name = name
        self.installed = installed
        super().__init__(
            f"no driver named {name!r} is installed on this agent "
            f"(installed: {', '.join(installed) or 'none'})"
        )


class DriverRegistry:
    """Drivers by name, each loaded and instantiated once, on first use.

    ``factories`` replaces the ``lbaas.drivers`` entry points (for tests).
    """

    def __init__(
        self, settings: AgentSettings, factories: Mapping[str, DriverFactory] | None = None
    ) -> None:
        self._settings = settings
        self._factories = factories
        self._drivers: dict[str, Driver] = {}

    @property
    def names(self) -> list[str]:
        """The installed drivers' names, sorted."""
        if self._factories is not None:
            return sorted(self._factories)
        return sorted({point.name for point in entry_points(group=ENTRY_POINT_GROUP)})

    def get(self, name: str) -> Driver:
        driver = self._drivers.get(name)
        if driver is None:
            driver = self._drivers[name] = self._factory(name)(self._settings)
        return driver

    def declarations(self) -> list[ProviderDeclaration]:
        """The declarations of the installed drivers that declare one under their own name.

        Loads every driver; one that cannot be loaded is left out (its commands fail as
        they would have).
        """
        declared = []
        for name in self.names:
            try:
                driver = self.get(name)
            except Exception:
                log.exception("driver %r cannot be loaded; it is not announced", name)
                continue
            if not isinstance(driver, DeclaresProvider):
                continue
            if driver.provider.name != name:
                log.error(
                    "driver %r declares the name %r; it is not announced",
                    name,
                    driver.provider.name,
                )
                continue
            declared.append(driver.provider)
        return declared

    def _factory(self, name: str) -> DriverFactory:
        if self._factories is not None:
            factory = self._factories.get(name)
            if factory is None:
                raise UnknownDriver(name, self.names)
            return factory
        points = entry_points(group=ENTRY_POINT_GROUP, name=name)
        if not points:
            raise UnknownDriver(name, self.names)
        return cast(DriverFactory, next(iter(points)).load())


async def call_driver(call: DriverCall) -> DriverOutcome:
    """One driver call: awaited if it is a coroutine function, else run in a worker thread."""
    is_coroutine = inspect.iscoroutinefunction(call)
    returned: object = call() if is_coroutine else await asyncio.to_thread(call)
    if inspect.isawaitable(returned):
        returned = await returned
    if returned is None or isinstance(returned, InProgress):
        return returned
    raise TypeError(f"driver returned {returned!r}; expected InProgress or None")


async def run_driver(
    driver: Driver, device: DeviceSpec, call: DriverCall, poll_interval: float
) -> None:
    """Run ``call`` and then poll the device every ``poll_interval`` s until it is done."""
    outcome = await call_driver(call)
    while outcome is not None:
        await asyncio.sleep(poll_interval)
        outcome = await call_driver(partial(driver.poll, device, outcome.handle))


async def read_status(driver: Driver, device: DeviceSpec) -> DeviceState:
    """The driver's view of ``device``: awaited, or read in a worker thread."""
    if inspect.iscoroutinefunction(driver.status):
        return await driver.status(device)  # type: ignore[no-any-return]
    returned = await asyncio.to_thread(driver.status, device)
    return await returned if inspect.isawaitable(returned) else returned
