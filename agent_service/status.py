"""Status reports out: every interval, each known device's counters go to ``<prefix>.status``.

A device is known once the agent has run a command for it. A report that
cannot be read or published is logged and tried again at the next interval.
"""

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from uuid import UUID

from agent_service.drivers import DriverRegistry, UnknownDriver, read_stats
from agent_service.outbound import NotPublished, Publisher
from shared.messages import DeviceSpec, StatusReport

log = logging.getLogger(__name__)


class StatusReporter:
    def __init__(
        self,
        devices: Mapping[UUID, DeviceSpec],
        registry: DriverRegistry,
        publisher: Publisher,
        *,
        agent_id: str,
        interval: float,
    ) -> None:
        self._devices = devices
        self._registry = registry
        self._publisher = publisher
        self._agent_id = agent_id
        self._interval = interval

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for device in list(self._devices.values()):
                await self.report(device)

    async def report(self, device: DeviceSpec) -> None:
        try:
            counters = await read_stats(self._registry.get(device.driver), device)
            await self._publisher.publish_status(
                StatusReport(
                    device_id=device.id,
                    agent_id=self._agent_id,
                    reported_at=datetime.now(UTC),
                    loadbalancers=counters,
                )
            )
        except NotPublished as exc:
            log.warning("status report not published: %s", exc, extra={"device_id": device.id})
        except UnknownDriver as exc:
            log.warning("no status report: %s", exc, extra={"device_id": device.id})
        except Exception:
            log.exception("reading the device's counters failed", extra={"device_id": device.id})
