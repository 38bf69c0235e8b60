"""A simulated remote appliance: configurable latency, failures and asynchronous completion.

The device's ``management_url`` sets its behaviour, e.g.
``sim://appliance-1?latency=0.2&fail=0.1&async=1``:

- ``latency``: seconds each apply/delete takes (default 0);
- ``fail`` / ``fail_delete``: probability (0..1) that an apply / a delete fails;
- ``async=1``: apply/delete return at once with a handle and complete
  ``latency`` seconds later, as ``poll`` reports.

Each appliance (host name) journals ``*_started`` before the latency, and
``*_done`` or ``*_failed`` after it; see :mod:`agent_service.drivers.sim_state`.
"""

import asyncio
import math
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit
from uuid import UUID, uuid4

from agent_service.drivers import (
    DeviceState,
    InProgress,
    Observed,
    Refused,
    Superseded,
    spec_digest,
)
from agent_service.drivers.sim_state import (
    ApplianceState,
    FileApplianceState,
    JournalEntry,
    MemoryApplianceState,
)
from agent_service.settings import AgentSettings
from shared.capabilities import EVERY_OPTION, ProviderDeclaration
from shared.messages import Counters, DeviceSpec, LoadBalancerSpec, LoadBalancerStatus

_HOST = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,62}")
_MAX_LATENCY = 3600.0
_PARAMETERS = ("latency", "fail", "fail_delete", "async")
_FORGET_UNPOLLED_AFTER = 3600.0
"""Seconds after its completion time that an operation nobody polled is forgotten."""


class SimulatedFailure(Refused):
    """The appliance refused the work, as its failure probability said it might.

    A refusal, as a real device's of a bad configuration: drift repair does not try it again.
    """


@dataclass(frozen=True)
class SimParameters:
    host: str
    latency: float = 0.0
    fail: float = 0.0
    fail_delete: float = 0.0
    asynchronous: bool = False

    @classmethod
    def from_url(cls, url: str) -> "SimParameters":
        """Parse a ``sim://`` management URL; ``ValueError`` says what is wrong with it."""
        try:
            return cls._parse(url)
        except ValueError as exc:
            raise ValueError(f"invalid sim management_url {url!r}: {exc}") from None

    @classmethod
    def _parse(cls, url: str) -> "SimParameters":
        parts = urlsplit(url)
        if parts.scheme != "sim" or not url.startswith("sim://"):
            raise ValueError("the scheme must be sim://")
        if not _HOST.fullmatch(parts.netloc):
            raise ValueError(
                "the host must be 1-63 letters, digits, dots or dashes, starting with a letter "
                "or digit (no user, password or port)"
            )
        if parts.path not in ("", "/") or parts.fragment:
            raise ValueError("no path or fragment is allowed")
        values = _query_values(parts.query)
        return cls(
            host=parts.netloc,
            latency=_number(values, "latency", 0.0, _MAX_LATENCY),
            fail=_number(values, "fail", 0.0, 1.0),
            fail_delete=_number(values, "fail_delete", 0.0, 1.0),
            asynchronous=_flag(values, "async"),
        )


def _query_values(query: str) -> dict[str, str]:
    pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    values: dict[str, str] = {}
    for name, value in pairs:
        if name not in _PARAMETERS:
            raise ValueError(f"unknown parameter {name!r} (known: {', '.join(_PARAMETERS)})")
        if name in values:
            raise ValueError(f"parameter {name!r} is given twice")
        values[name] = value
    return values


def _number(values: dict[str, str], name: str, low: float, high: float) -> float:
    if name not in values:
        return low
    try:
        number = float(values[name])
    except ValueError:
        raise ValueError(f"{name} must be a number, not {values[name]!r}") from None
    if not (math.isfinite(number) and low <= number <= high):
        raise ValueError(f"{name} must be between {low:g} and {high:g}, not {values[name]!r}")
    return number


def _flag(values: dict[str, str], name: str) -> bool:
    value = values.get(name, "0")
    if value not in ("0", "1"):
        raise ValueError(f"{name} must be 0 or 1, not {value!r}")
    return value == "1"


@dataclass(frozen=True)
class _Pending:
    host: str
    completes_at: float
    finish: Callable[[], Awaitable[None]]


class SimDriver:
    """Simulated appliances, driven by coroutines; state on disk when ``sim_state_dir`` is set."""

    provider = ProviderDeclaration(
        name="sim",
        description="A simulated appliance with latency and failures; accepts every option.",
        capabilities=EVERY_OPTION,
    )

    def __init__(self, settings: AgentSettings) -> None:
        self.state: ApplianceState = (
            FileApplianceState(settings.sim_state_dir)
            if settings.sim_state_dir is not None
            else MemoryApplianceState()
        )
        self._pending: dict[str, _Pending] = {}
        self._random = random.Random()

    async def apply(self, device: DeviceSpec, spec: LoadBalancerSpec) -> InProgress | None:
        params = SimParameters.from_url(device.management_url)
        await self.state.record(params.host, "apply_started", spec.id, spec.generation)
        return await self._perform(params, lambda: self._finish_apply(params, spec))

    async def status(self, device: DeviceSpec) -> DeviceState:
        """Each load balancer on the appliance with its counters (zeros without traffic).

        The simulated counters never reset: the appliance is one epoch.
        """
        host = SimParameters.from_url(device.management_url).host
        traffic = await asyncio.to_thread(self.state.counters, host)
        configured = await asyncio.to_thread(self.state.loadbalancers, host)
        return {
            lb_id: Observed(
                spec_digest(spec),
                LoadBalancerStatus(epoch=host, counters=traffic.get(lb_id, Counters())),
            )
            for lb_id, spec in configured.items()
        }

    def digest(self, spec: LoadBalancerSpec) -> str:
        return spec_digest(spec)

    async def delete(self, device: DeviceSpec, loadbalancer_id: UUID) -> InProgress | None:
        params = SimParameters.from_url(device.management_url)
        await self.state.record(params.host, "delete_started", loadbalancer_id, None)
        return await self._perform(params, lambda: self._finish_delete(params, loadbalancer_id))

    async def poll(self, device: DeviceSpec, handle: str) -> InProgress | None:
        params = SimParameters.from_url(device.management_url)
        pending = self._pending.get(handle)
        if pending is None or pending.host != params.host:
            raise LookupError(f"sim appliance {params.host} has no operation {handle!r}")
        if asyncio.get_running_loop().time() < pending.completes_at:
            return InProgress(handle)
        del self._pending[handle]
        await pending.finish()
        return None

    def loadbalancers(self, host: str) -> dict[UUID, LoadBalancerSpec]:
        """The specs the appliance ``host`` holds now, by load balancer id."""
        return self.state.loadbalancers(host)

    def journal(self, host: str) -> list[JournalEntry]:
        return self.state.journal(host)

    async def _perform(
        self, params: SimParameters, finish: Callable[[], Awaitable[None]]
    ) -> InProgress | None:
        if not params.asynchronous:
            await asyncio.sleep(params.latency)
            await finish()
            return None
        now = asyncio.get_running_loop().time()
        self._forget_unpolled(now)
        handle = uuid4().hex
        self._pending[handle] = _Pending(params.host, now + params.latency, finish)
        return InProgress(handle)

    def _forget_unpolled(self, now: float) -> None:
        """Drop operations the agent gave up polling (timeout, shutdown) long ago."""
        stale = [
            handle
            for handle, pending in self._pending.items()
            if pending.completes_at + _FORGET_UNPOLLED_AFTER < now
        ]
        for handle in stale:
            del self._pending[handle]

    async def _finish_apply(self, params: SimParameters, spec: LoadBalancerSpec) -> None:
        held = await asyncio.to_thread(self.state.loadbalancer, params.host, spec.id)
        if held is not None and held.generation > spec.generation:
            await self.state.record(params.host, "apply_superseded", spec.id, spec.generation)
            raise Superseded(
                f"sim appliance {params.host} holds generation {held.generation}, "
                f"not going back to {spec.generation}"
            )
        if self._random.random() < params.fail:
            await self.state.record(params.host, "apply_failed", spec.id, spec.generation)
            raise SimulatedFailure(
                f"sim appliance {params.host} rejected the configuration "
                f"(simulated failure, fail={params.fail})"
            )
        await self.state.save(params.host, spec)
        await self.state.record(params.host, "apply_done", spec.id, spec.generation)

    async def _finish_delete(self, params: SimParameters, loadbalancer_id: UUID) -> None:
        if self._random.random() < params.fail_delete:
            await self.state.record(params.host, "delete_failed", loadbalancer_id, None)
            raise SimulatedFailure(
                f"sim appliance {params.host} failed to delete load balancer {loadbalancer_id} "
                f"(simulated failure, fail_delete={params.fail_delete})"
            )
        await self.state.remove(params.host, loadbalancer_id)
        await self.state.record(params.host, "delete_done", loadbalancer_id, None)
