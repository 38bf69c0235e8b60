"""Status reports as the API applies them: signed by the device's report secret, ordered by
when they arrive, counters totalled across epochs."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import aio_pika
from pydantic import SecretStr

from api_service.secret_keys import SecretKeys
from shared.messages import Counters, LoadBalancerStatus, StatusReport
from shared.status import OperatingStatus
from shared.topology import STATUS_ROUTING_KEY
from tests.support.client import LbaasClient
from tests.support.stack import SECRET_KEY, Api, Isolation, eventually

API = "/v2/lbaas"


async def _publish(isolation: Isolation, report: StatusReport) -> None:
    connection = await aio_pika.connect(isolation.amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await channel.get_exchange(isolation.names.status_exchange, ensure=False)
        message = aio_pika.Message(report.model_dump_json().encode())
        await exchange.publish(message, routing_key=STATUS_ROUTING_KEY, mandatory=True)


async def test_reports_count_in_the_order_received_and_forged_or_future_ones_change_nothing(
    client: LbaasClient, isolation: Isolation, api: Api
) -> None:
    # No agent runs this driver: only the reports below reach the API for this device.
    device = await client.create_device("unwatched")
    lb = await client.wait_lb((await client.create_lb(device)).json()["loadbalancer"]["id"])
    now = datetime.now(UTC)
    signed = SecretStr(SecretKeys([SecretStr(SECRET_KEY)]).report_secret(UUID(device["id"])))

    def report(
        at: datetime, epoch: str, total: int, status: OperatingStatus, secret: SecretStr = signed
    ) -> StatusReport:
        shown = LoadBalancerStatus(
            epoch=epoch,
            operating_status=status,
            counters=Counters(total_connections=total, bytes_in=total * 10),
        )
        return StatusReport(
            device_id=device["id"],
            report_secret=secret,
            agent_id="reporter",
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

    await _publish(isolation, report(now, "e1", 10, OperatingStatus.OFFLINE))
    await eventually(lambda: shows(10, "OFFLINE"), what="the first report applied")
    forged = report(now, "e1", 666, OperatingStatus.ERROR, SecretStr("f" * 64))
    await _publish(isolation, forged)
    await _publish(
        isolation, report(datetime(9999, 12, 31, tzinfo=UTC), "e1", 99, OperatingStatus.ERROR)
    )
    # an agent's clock running late does not hold its reports back: received later, newer
    await _publish(isolation, report(now - timedelta(hours=1), "e1", 15, OperatingStatus.OFFLINE))
    await eventually(lambda: shows(15, "OFFLINE"), what="the report received next applied")

    async def dead_lettered() -> bool | None:
        return "without its device's report secret" in api.log() or None

    await eventually(dead_lettered, what="the forged report dead-lettered")
    await _publish(isolation, report(now, "e2", 3, OperatingStatus.OFFLINE))
    await eventually(lambda: shows(18, "OFFLINE"), what="a new epoch counted from zero")
    unreachable = StatusReport(
        device_id=device["id"],
        report_secret=signed,
        agent_id="reporter",
        reported_at=now,
        reachable=False,
    )
    await _publish(isolation, unreachable)

    async def offline() -> bool | None:
        got = (await client.http.get(f"{API}/devices/{device['id']}")).json()["device"]
        return True if got["operating_status"] == "OFFLINE" else None

    await eventually(offline, what="the device OFFLINE")
    shown = (await client.get_lb(lb["id"])).json()["loadbalancer"]
    assert shown["provisioning_status"] == lb["provisioning_status"]
