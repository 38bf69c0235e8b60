"""What of a driver's error reaches the project, and what reaches operators."""

import uuid
from datetime import UTC, datetime

from pydantic import SecretStr

from agent_service.devices import Devices
from agent_service.drivers import DriverRegistry, Refused
from agent_service.drivers.noop import NoopDriver
from agent_service.executor import DEVICE_FAILED, CommandExecutor
from agent_service.metrics import AgentMetrics
from agent_service.settings import AgentSettings
from shared.messages import Command, DeviceSpec, LoadBalancerSpec, Result
from shared.redaction import for_project, without_secrets
from shared.status import CommandAction, Outcome

SECRET = "s3cret-bearer-0123456789"
URL = "https://ops:pa55word@mgmt.example:9443/api"


def test_operators_see_everything_but_credentials() -> None:
    text = f"POST {URL} with {SECRET} failed: [/var/lib/lbaas/x/haproxy.cfg:12] 10.0.0.2:80"
    shown = without_secrets(text, [SECRET])
    assert SECRET not in shown and "pa55word" not in shown and "ops:" not in shown
    assert "/var/lib/lbaas/x/haproxy.cfg" in shown and "10.0.0.2" in shown


def test_a_project_sees_no_urls_paths_addresses_or_device_hosts() -> None:
    text = (
        f"device at {URL} said: parsing [/var/lib/lbaas/x/haproxy.cfg:12]: server 10.0.0.2:80 "
        f"or [2001:db8::1]:80 on mgmt.example, token {SECRET}: 'timeout' must be an integer"
    )
    shown = for_project(text, [SECRET], ["mgmt.example"])
    for hidden in (SECRET, "pa55word", "/var/lib", "10.0.0.2", "2001:db8", "mgmt.example"):
        assert hidden not in shown
    assert "'timeout' must be an integer" in shown


class _Failing(NoopDriver):
    def __init__(self, exc: Exception) -> None:
        super().__init__()
        self.exc = exc

    def apply(self, device: DeviceSpec, spec: LoadBalancerSpec) -> None:
        raise self.exc


async def _result(exc: Exception) -> Result:
    device_id, lb_id = uuid.uuid4(), uuid.uuid4()
    device = DeviceSpec(
        id=device_id,
        name="d1",
        driver="failing",
        management_url="https://mgmt.example:9443",
        secret=SecretStr(SECRET),
        report_secret=SecretStr("r" * 64),
    )
    command = Command(
        op_id=uuid.uuid4(),
        device_id=device_id,
        loadbalancer_id=lb_id,
        generation=1,
        action=CommandAction.APPLY,
        driver="failing",
        device=device,
        spec=LoadBalancerSpec(
            id=lb_id, project_id="p", admin_state_up=True, vip_address="10.0.0.1", generation=1
        ),
        issued_at=datetime.now(UTC),
        result_secret=SecretStr("x" * 43),
    )
    settings = AgentSettings(amqp_url="amqp://localhost/")
    registry = DriverRegistry(settings, {"failing": lambda _: _Failing(exc)})
    executor = CommandExecutor(
        registry,
        Devices(),
        AgentMetrics(),
        "agent-1",
        poll_interval=0.01,
        driver_timeout=5,
        max_parallel=1,
    )
    return await executor.execute(command, term=0)


async def test_a_refused_configuration_is_told_to_the_project_cleaned() -> None:
    result = await _result(
        Refused(f"rejected [/etc/haproxy/x.cfg:3] at mgmt.example ({SECRET}): bad 'maxconn'")
    )
    assert result.outcome is Outcome.ERROR
    assert result.error is not None and result.detail is not None
    assert "bad 'maxconn'" in result.error
    for hidden in (SECRET, "/etc/haproxy", "mgmt.example"):
        assert hidden not in result.error
    assert "/etc/haproxy/x.cfg" in result.detail and SECRET not in result.detail
    assert result.result_secret.get_secret_value() == "x" * 43


async def test_a_device_failure_tells_the_project_only_that() -> None:
    result = await _result(ConnectionError(f"cannot reach {URL} with {SECRET}"))
    assert result.error == DEVICE_FAILED
    assert result.detail is not None and "mgmt.example" in result.detail
    assert SECRET not in result.detail and "pa55word" not in result.detail
