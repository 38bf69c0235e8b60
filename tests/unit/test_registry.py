"""The driver registry and how the agent calls drivers (agent_service.drivers).

Most tests use small fake drivers given to :class:`DriverRegistry` as
``factories``; one set uses the real ``lbaas.drivers`` entry points of the
installed package. Thread checks compare ``threading.get_ident()`` with the
event loop's thread: plain functions must run in a worker thread, coroutine
functions on the loop.
"""

import re
import threading
from collections.abc import Awaitable
from functools import partial
from uuid import UUID, uuid4

import pytest

from agent_service.drivers import (
    DeviceState,
    Driver,
    DriverFactory,
    DriverRegistry,
    InProgress,
    Observed,
    Refused,
    UnknownDriver,
    call_driver,
    read_status,
    run_driver,
    spec_digest,
)
from agent_service.drivers.noop import NoopDriver
from agent_service.settings import AgentSettings
from shared.messages import DeviceSpec, LoadBalancerSpec, LoadBalancerStatus, PoolSpec

DEVICE = DeviceSpec(
    id=uuid4(), name="dev-1", driver="fake", management_url="fake://dev-1", report_secret="r" * 64
)
POLL_INTERVAL = 0.001


def make_spec(**changes: object) -> LoadBalancerSpec:
    fields: dict[str, object] = {
        "id": UUID("00000000-0000-4000-8000-000000000001"),
        "project_id": "project-1",
        "admin_state_up": True,
        "vip_address": "192.0.2.10",
        "generation": 3,
    }
    return LoadBalancerSpec.model_validate(fields | changes)


OBSERVED: DeviceState = {
    uuid4(): Observed(digest="sha256:abc", status=LoadBalancerStatus(epoch="e1"))
}


class Recorder:
    """What a fake driver was asked; ``apply`` starts an operation that ``poll`` finishes after
    ``polls`` polls."""

    def __init__(self, settings: AgentSettings, polls: int = 0) -> None:
        self.settings = settings
        self.remaining = polls
        self.calls: list[tuple[str, DeviceSpec, str]] = []
        self.status_threads: list[int] = []

    def record(self, call: str, device: DeviceSpec, argument: str) -> InProgress | None:
        self.calls.append((call, device, argument))
        if self.remaining == 0:
            return None
        self.remaining -= 1
        return InProgress(f"op-{self.remaining}")

    def observe(self) -> DeviceState:
        self.status_threads.append(threading.get_ident())
        return OBSERVED

    def digest(self, spec: LoadBalancerSpec) -> str:
        return spec_digest(spec)


class FakeDriver(Recorder):
    """A driver of plain functions."""

    def apply(self, device: DeviceSpec, spec: LoadBalancerSpec) -> InProgress | None:
        return self.record("apply", device, str(spec.generation))

    def delete(self, device: DeviceSpec, loadbalancer_id: UUID) -> InProgress | None:
        return self.record("delete", device, str(loadbalancer_id))

    def poll(self, device: DeviceSpec, handle: str) -> InProgress | None:
        return self.record("poll", device, handle)

    def status(self, device: DeviceSpec) -> DeviceState:
        return self.observe()


class AsyncFakeDriver(Recorder):
    """The same driver with coroutine functions."""

    async def apply(self, device: DeviceSpec, spec: LoadBalancerSpec) -> InProgress | None:
        return self.record("apply", device, str(spec.generation))

    async def delete(self, device: DeviceSpec, loadbalancer_id: UUID) -> InProgress | None:
        return self.record("delete", device, str(loadbalancer_id))

    async def poll(self, device: DeviceSpec, handle: str) -> InProgress | None:
        return self.record("poll", device, handle)

    async def status(self, device: DeviceSpec) -> DeviceState:
        return self.observe()


class FailingStatusDriver(FakeDriver):
    def status(self, device: DeviceSpec) -> DeviceState:
        raise ConnectionError("device does not answer")


# --- DriverRegistry with factories --------------------------------------------------------


class CountingFactory:
    """A factory that remembers each settings object it was called with."""

    def __init__(self) -> None:
        self.settings: list[AgentSettings] = []

    def __call__(self, settings: AgentSettings) -> Driver:
        self.settings.append(settings)
        return FakeDriver(settings)


def test_names_are_the_factories_sorted() -> None:
    factories: dict[str, DriverFactory] = {
        "zeta": FakeDriver,
        "alpha": FakeDriver,
        "mid": FakeDriver,
    }
    assert DriverRegistry(AgentSettings(), factories).names == ["alpha", "mid", "zeta"]


def test_a_driver_is_instantiated_once_with_the_settings_and_reused() -> None:
    settings = AgentSettings()
    first, second = CountingFactory(), CountingFactory()
    registry = DriverRegistry(settings, {"first": first, "second": second})
    assert first.settings == second.settings == []
    driver = registry.get("first")
    assert registry.get("first") is driver
    assert registry.get("first") is driver
    assert len(first.settings) == 1
    assert first.settings[0] is settings
    assert second.settings == []
    assert registry.get("second") is not driver
    assert len(second.settings) == 1


def test_an_unknown_name_lists_the_installed_drivers() -> None:
    factory = CountingFactory()
    registry = DriverRegistry(AgentSettings(), {"noop": factory, "haproxy": factory})
    with pytest.raises(UnknownDriver) as raised:
        registry.get("f5")
    assert raised.value.name == "f5"
    assert raised.value.installed == ["haproxy", "noop"]
    assert "'f5'" in str(raised.value)
    assert "installed: haproxy, noop" in str(raised.value)
    assert factory.settings == []
    assert isinstance(raised.value, LookupError)


def test_an_unknown_name_with_no_driver_installed() -> None:
    with pytest.raises(UnknownDriver, match=r"installed: none"):
        DriverRegistry(AgentSettings(), {}).get("noop")


# --- DriverRegistry with the installed entry points ---------------------------------------


def test_the_entry_points_provide_haproxy_noop_and_sim() -> None:
    names = DriverRegistry(AgentSettings()).names
    assert {"haproxy", "noop", "sim"} <= set(names)
    assert names == sorted(names)


def test_an_entry_point_driver_is_loaded_once() -> None:
    registry = DriverRegistry(AgentSettings())
    driver = registry.get("noop")
    assert isinstance(driver, NoopDriver)
    assert registry.get("noop") is driver


def test_an_unknown_entry_point_lists_the_installed_drivers() -> None:
    with pytest.raises(UnknownDriver) as raised:
        DriverRegistry(AgentSettings()).get("no-such-driver")
    assert {"haproxy", "noop", "sim"} <= set(raised.value.installed)
    assert "haproxy" in str(raised.value)


# --- call_driver --------------------------------------------------------------------------


async def test_a_plain_function_runs_in_a_worker_thread() -> None:
    threads: list[int] = []

    def call() -> None:
        threads.append(threading.get_ident())

    assert await call_driver(call) is None
    assert len(threads) == 1
    assert threads[0] != threading.get_ident()


async def test_a_coroutine_function_is_awaited_on_the_event_loop() -> None:
    threads: list[int] = []

    async def call() -> InProgress:
        threads.append(threading.get_ident())
        return InProgress("job-1")

    assert await call_driver(call) == InProgress("job-1")
    assert threads == [threading.get_ident()]


async def test_a_plain_function_returning_an_awaitable_is_awaited() -> None:
    async def finish() -> InProgress:
        return InProgress("job-2")

    def call() -> Awaitable[InProgress | None]:
        return finish()

    assert await call_driver(call) == InProgress("job-2")


@pytest.mark.parametrize("outcome", [None, InProgress("h")])
async def test_none_and_in_progress_are_returned_as_they_are(outcome: InProgress | None) -> None:
    async def coroutine() -> InProgress | None:
        return outcome

    assert await call_driver(lambda: outcome) == outcome
    assert await call_driver(coroutine) == outcome


@pytest.mark.parametrize("returned", ["done", 0, False, {"handle": "h"}])
async def test_any_other_return_value_is_a_type_error(returned: object) -> None:
    async def coroutine() -> object:
        return returned

    with pytest.raises(TypeError, match="expected InProgress or None"):
        await call_driver(lambda: returned)  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match=re.escape(repr(returned))):
        await call_driver(coroutine)  # type: ignore[arg-type]


async def test_a_driver_exception_propagates() -> None:
    def call() -> None:
        raise Refused("bad config")

    with pytest.raises(Refused, match="bad config"):
        await call_driver(call)


# --- run_driver ---------------------------------------------------------------------------


@pytest.mark.parametrize("driver_class", [FakeDriver, AsyncFakeDriver])
async def test_run_driver_polls_each_handle_until_poll_returns_none(
    driver_class: type[FakeDriver] | type[AsyncFakeDriver],
) -> None:
    driver = driver_class(AgentSettings(), polls=3)
    spec = make_spec()
    await run_driver(driver, DEVICE, partial(driver.apply, DEVICE, spec), POLL_INTERVAL)
    assert driver.calls == [
        ("apply", DEVICE, "3"),
        ("poll", DEVICE, "op-2"),
        ("poll", DEVICE, "op-1"),
        ("poll", DEVICE, "op-0"),
    ]
    assert driver.remaining == 0


async def test_run_driver_does_not_poll_a_call_that_is_done() -> None:
    driver = FakeDriver(AgentSettings(), polls=0)
    lb_id = uuid4()
    await run_driver(driver, DEVICE, partial(driver.delete, DEVICE, lb_id), POLL_INTERVAL)
    assert driver.calls == [("delete", DEVICE, str(lb_id))]


async def test_run_driver_raises_what_a_poll_raises() -> None:
    class BrokenPoll(FakeDriver):
        def poll(self, device: DeviceSpec, handle: str) -> InProgress | None:
            raise Refused(f"operation {handle} failed")

    driver = BrokenPoll(AgentSettings(), polls=1)
    with pytest.raises(Refused, match="operation op-0 failed"):
        await run_driver(driver, DEVICE, partial(driver.apply, DEVICE, make_spec()), POLL_INTERVAL)


# --- read_status --------------------------------------------------------------------------


async def test_read_status_runs_a_plain_status_in_a_worker_thread() -> None:
    driver = FakeDriver(AgentSettings())
    assert await read_status(driver, DEVICE) == OBSERVED
    assert len(driver.status_threads) == 1
    assert driver.status_threads[0] != threading.get_ident()


async def test_read_status_awaits_a_coroutine_status_on_the_event_loop() -> None:
    driver = AsyncFakeDriver(AgentSettings())
    assert await read_status(driver, DEVICE) == OBSERVED
    assert driver.status_threads == [threading.get_ident()]


async def test_read_status_raises_when_the_device_does_not_answer() -> None:
    with pytest.raises(ConnectionError, match="does not answer"):
        await read_status(FailingStatusDriver(AgentSettings()), DEVICE)


# --- spec_digest --------------------------------------------------------------------------


def test_equal_specs_have_equal_digests() -> None:
    digest = spec_digest(make_spec())
    assert spec_digest(make_spec()) == digest
    prefix, hexdigest = digest.split(":")
    assert prefix == "sha256"
    assert len(hexdigest) == 64
    int(hexdigest, 16)


@pytest.mark.parametrize(
    "changes",
    [
        {"generation": 4},
        {"vip_address": "192.0.2.11"},
        {"admin_state_up": False},
        {
            "pools": [
                PoolSpec(
                    id=UUID("00000000-0000-4000-8000-000000000002"),
                    protocol="HTTP",
                    lb_algorithm="ROUND_ROBIN",
                    admin_state_up=True,
                )
            ]
        },
    ],
)
def test_a_different_spec_has_a_different_digest(changes: dict[str, object]) -> None:
    assert spec_digest(make_spec(**changes)) != spec_digest(make_spec())
