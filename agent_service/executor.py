"""Carrying out one command on its device through its driver, and saying how it went."""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Self
from urllib.parse import urlsplit
from uuid import UUID

from opentelemetry.trace import SpanKind, StatusCode

from agent_service.devices import Attempt, Devices
from agent_service.drivers import DriverCall, DriverRegistry, Refused, Superseded, run_driver
from agent_service.metrics import AgentMetrics
from shared.messages import Command, DeviceSpec, Result
from shared.redaction import device_secrets, for_project, without_secrets
from shared.status import CommandAction, Outcome
from shared.tracing import context_of, current_context, tracer

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 4096


def log_context(command: Command) -> dict[str, object]:
    """The ``extra`` of every log line about ``command`` (see ``shared.logging.CONTEXT_FIELDS``)."""
    return {
        "op_id": command.op_id,
        "loadbalancer_id": command.loadbalancer_id,
        "device_id": command.device_id,
        "generation": command.generation,
    }


DEVICE_FAILED = (
    "the device could not apply the change: an infrastructure failure, not a problem of the "
    "configuration (operators see the detail in the operation)"
)


@dataclass(frozen=True)
class Failure:
    """Why a command failed: ``error`` for the project, ``detail`` for operators.

    Neither holds the device's credentials. When the project's configuration was
    refused, ``error`` is the driver's message without URLs, paths and
    addresses; when the device failed, it says only that.
    """

    error: str
    detail: str
    attempt: Attempt

    @classmethod
    def of_configuration(cls, device: DeviceSpec, message: str) -> Self:
        secrets = device_secrets(device)
        host = urlsplit(device.management_url).hostname
        return cls(
            error=for_project(message, secrets, [host] if host else [])[:MAX_ERROR_LENGTH],
            detail=without_secrets(message, secrets)[:MAX_ERROR_LENGTH],
            attempt=Attempt.REJECTED,
        )

    @classmethod
    def of_device(cls, device: DeviceSpec, message: str, attempt: Attempt) -> Self:
        return cls(
            error=DEVICE_FAILED,
            detail=without_secrets(message, device_secrets(device))[:MAX_ERROR_LENGTH],
            attempt=attempt,
        )


class CommandExecutor:
    """Runs a command's driver call to completion and turns the outcome into a :class:`Result`.

    The caller holds the device's lock. A driver's failure, an unknown driver or
    a call that outlasts ``driver_timeout`` becomes an ``ERROR`` result; only
    cancellation escapes. How it went is recorded in ``devices``, for drift repair.
    At most ``max_parallel`` driver calls run at once (on as many devices).
    """

    def __init__(
        self,
        registry: DriverRegistry,
        devices: Devices,
        metrics: AgentMetrics,
        agent_id: str,
        *,
        poll_interval: float,
        driver_timeout: float,
        max_parallel: int,
    ) -> None:
        self._registry = registry
        self._devices = devices
        self._metrics = metrics
        self._agent_id = agent_id
        self._poll_interval = poll_interval
        self._driver_timeout = driver_timeout
        self._slots = asyncio.Semaphore(max_parallel)

    async def execute(self, command: Command, *, term: int) -> Result:
        """In a span of the command's trace; the result carries that span on. ``term``: the
        :attr:`Devices.term` the command was received in (how it went is recorded only if
        that term lasts)."""
        started_at = datetime.now(UTC)
        with tracer().start_as_current_span(
            f"{command.action} on {command.driver}",
            context=context_of(command.trace_context),
            kind=SpanKind.CONSUMER,
            attributes={"lbaas.loadbalancer_id": str(command.loadbalancer_id)},
        ) as span:
            async with self._slots:
                outcome, failure = await self._run(command)
            if failure is not None:
                span.set_status(StatusCode.ERROR, failure.error)
            trace_context = current_context()
        self._devices.record(command, outcome, term=term)
        elapsed = (datetime.now(UTC) - started_at).total_seconds()
        self._metrics.driver_duration.labels(command.driver, command.action, outcome).observe(
            elapsed
        )
        return Result(
            op_id=command.op_id,
            device_id=command.device_id,
            loadbalancer_id=command.loadbalancer_id,
            generation=command.generation,
            result_secret=command.result_secret,
            outcome=Outcome.ACTIVE if failure is None else Outcome.ERROR,
            error=None if failure is None else failure.error,
            detail=None if failure is None else failure.detail,
            agent_id=self._agent_id,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            trace_context=trace_context,
        )

    async def remove_orphan(self, device: DeviceSpec, loadbalancer_id: UUID) -> None:
        """Delete what ``device`` holds of a load balancer the database does not place there
        (no command, no result: nobody waits for it). Raises what the driver raised."""
        driver = self._registry.get(device.driver)
        call = partial(driver.delete, device, loadbalancer_id)
        async with self._slots, asyncio.timeout(self._driver_timeout):
            await run_driver(driver, device, call, self._poll_interval)

    async def _run(self, command: Command) -> tuple[Attempt, Failure | None]:
        deadline = asyncio.timeout(self._driver_timeout)
        try:
            _check_consistent(command)
            driver = self._registry.get(command.driver)
            call: DriverCall = (
                partial(driver.apply, command.device, command.spec)
                if command.action is CommandAction.APPLY
                else partial(driver.delete, command.device, command.loadbalancer_id)
            )
            async with deadline:
                await run_driver(driver, command.device, call, self._poll_interval)
        except Superseded as exc:
            log.info("command not applied: %s", exc, extra=log_context(command))
            return Attempt.SUPERSEDED, None
        except Exception as exc:
            failure = self._failure(command, exc, timed_out=deadline.expired())
            return failure.attempt, failure
        return Attempt.APPLIED, None

    def _failure(self, command: Command, exc: Exception, *, timed_out: bool) -> Failure:
        if timed_out:
            detail = (
                f"driver {command.driver!r} did not finish within "
                f"{self._driver_timeout:g} s (LBAAS_DRIVER_TIMEOUT)"
            )
            return Failure.of_device(command.device, detail, Attempt.FAILED)
        log.debug("driver call failed", exc_info=True, extra=log_context(command))
        detail = str(exc) or type(exc).__name__
        if isinstance(exc, Refused):
            return Failure.of_configuration(command.device, detail)
        return Failure.of_device(command.device, detail, Attempt.FAILED)


class InconsistentCommand(Refused, ValueError):
    """The command's envelope and its device or spec name different objects."""


def _check_consistent(command: Command) -> None:
    if command.device.id != command.device_id:
        raise InconsistentCommand(
            f"command for device {command.device_id} carries device {command.device.id}"
        )
    if command.spec.id != command.loadbalancer_id:
        raise InconsistentCommand(
            f"command for load balancer {command.loadbalancer_id} carries the spec of "
            f"load balancer {command.spec.id}"
        )
