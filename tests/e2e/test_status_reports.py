"""Status reports as the API applies them: fenced by time, counters totalled across epochs."""

from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika

from shared.messages import Counters, LoadBalancerStatus, StatusReport
from shared.status import OperatingStatus
from shared.topology import STATUS_ROUTING_KEY
from tests.support.client import LbaasClient
from tests.support.stack import Isolation, eventually

API = "/v2/lbaas"


async def _publish(isolation: Isolation, report: StatusReport) -> None:
    connection = await aio_pika.connect(isolation.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(isolation.names.status_exchange, ensure=False)
        message = aio_pika.Message(report.model_dump_json().encode())
        await exchange.publish(message, routing_key=STATUS_ROUTING_KEY, mandatory=True)


async def test_stale_and_future_reports_change_nothing_and_counters_add_up(
    client: LbaasClient, isolation: Isolation
) -> None:
    # No agent runs this driver: only the reports below reach the API for this device.
    device = await client.create_device("unwatched")
    lb = await client.wait_lb((await client.create_lb(device)).json()["loadbalancer"]["id"])
    now = datetime.now(UTC)

    def report(at: datetime, epoch: str, total: int, status: OperatingStatus) -> StatusReport:
        shown = LoadBalancerStatus(
            epoch=epoch,
            operating_status=status,
            counters=Counters(total_connections=total, bytes_in=total * 10),
        )
        return StatusReport(
            device_id=device["id"],
            agent_id="forger",
            reported_at=at,
            loadbalancers={lb["id"]: shown},
        )

    async def shows(total: int, status: str) -> bool | None:
        stats = (await client.http.get(f"{API}/loadbalancers/{lb['id']}/stats")).json()["stats"]
        shown: dict[str, Any] = (await client.get_lb(lb["id"])).json()["loadbalancer"]
        if stats["total_connections"] == total and shown["operating_status"] == status:
            assert stats["bytes_in"] == total * 10
            return True
        return None

    await _publish(
        isolation, report(now - timedelta(seconds=10), "e1", 10, OperatingStatus.OFFLINE)
    )
    await eventually(lambda: shows(10, "OFFLINE"), what="the first report applied")
    await _publish(isolation, report(now - timedelta(seconds=20), "e1", 50, OperatingStatus.ERROR))
    await _publish(isolation, report(now + timedelta(hours=1), "e1", 99, OperatingStatus.ERROR))
    await _publish(isolation, report(now - timedelta(seconds=9), "e1", 15, OperatingStatus.OFFLINE))
    await eventually(lambda: shows(15, "OFFLINE"), what="only the newer report applied")
    await _publish(isolation, report(now - timedelta(seconds=8), "e2", 3, OperatingStatus.OFFLINE))
    await eventually(lambda: shows(18, "OFFLINE"), what="a new epoch counted from zero")
    unreachable = StatusReport(
        device_id=device["id"],
        agent_id="forger",
        reported_at=now - timedelta(seconds=7),
        reachable=False,
    )
    await _publish(isolation, unreachable)

    async def offline() -> bool | None:
        got = (await client.http.get(f"{API}/devices/{device['id']}")).json()["device"]
        return True if got["operating_status"] == "OFFLINE" else None

    await eventually(offline, what="the device OFFLINE")
    shown = (await client.get_lb(lb["id"])).json()["loadbalancer"]
    assert shown["provisioning_status"] == lb["provisioning_status"]
