"""Providers' capabilities: what each driver declares, the check of a change against them, and
how the HAProxy renderer and device render and filter the options beyond the baseline."""

import subprocess
import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent_service.drivers import DriverRegistry
from agent_service.drivers.haproxy.render import CAPABILITIES, Unrenderable, render
from agent_service.settings import AgentSettings
from api_service.schemas.healthmonitors import MonitorType
from api_service.schemas.listeners import InsertHeader, ListenerProtocol
from api_service.schemas.pools import LbAlgorithm, PersistenceType, PoolProtocol
from device_service.instances import refuse_foreign
from shared.capabilities import BASELINE, EVERY_OPTION, Capabilities
from shared.messages import (
    HealthMonitorSpec,
    ListenerSpec,
    LoadBalancerSpec,
    MemberSpec,
    PoolSpec,
    ProviderAnnouncement,
)

LISTENER, POOL, MONITOR = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)


def _spec(
    listener_protocol: str = "HTTP",
    pool_protocol: str = "HTTP",
    algorithm: str = "ROUND_ROBIN",
    monitor: str | None = None,
) -> LoadBalancerSpec:
    pool = PoolSpec(
        id=POOL,
        protocol=pool_protocol,
        lb_algorithm=algorithm,
        admin_state_up=True,
        members=[
            MemberSpec(
                id=uuid.UUID(int=10),
                address="127.0.0.1",
                protocol_port=8080,
                weight=1,
                backup=False,
                admin_state_up=True,
            )
        ],
        healthmonitor=None
        if monitor is None
        else HealthMonitorSpec(
            id=MONITOR,
            type=monitor,
            delay=1,
            timeout=1,
            max_retries=1,
            max_retries_down=1,
            admin_state_up=True,
        ),
    )
    listener = ListenerSpec(
        id=LISTENER,
        protocol=listener_protocol,
        protocol_port=18080,
        admin_state_up=True,
        connection_limit=-1,
        default_pool_id=POOL,
        timeout_client_data=1000,
        timeout_member_connect=1000,
        timeout_member_data=1000,
        timeout_tcp_inspect=0,
    )
    return LoadBalancerSpec(
        id=uuid.UUID(int=99),
        project_id="p",
        admin_state_up=True,
        vip_address="127.0.0.1",
        generation=1,
        listeners=[listener],
        pools=[pool],
    )


def test_the_api_accepts_every_option_and_nothing_else() -> None:
    assert set(ListenerProtocol) == EVERY_OPTION.listener_protocols
    assert set(PoolProtocol) == EVERY_OPTION.pool_protocols
    assert set(LbAlgorithm) == EVERY_OPTION.lb_algorithms
    assert set(MonitorType) == EVERY_OPTION.healthmonitor_types
    assert set(InsertHeader) == EVERY_OPTION.insert_headers
    assert set(PersistenceType) == EVERY_OPTION.session_persistence_types
    for field in Capabilities.model_fields:
        assert getattr(BASELINE, field) <= getattr(EVERY_OPTION, field)


def test_each_driver_declares_itself_under_its_entry_point_name() -> None:
    declared = {p.name: p for p in DriverRegistry(AgentSettings()).declarations()}
    assert set(declared) == {"noop", "sim", "haproxy"}
    assert declared["noop"].capabilities == EVERY_OPTION
    assert declared["sim"].capabilities == EVERY_OPTION
    haproxy = declared["haproxy"].capabilities
    assert haproxy == CAPABILITIES
    assert {"PROXY", "PROXYV2"} <= haproxy.pool_protocols
    assert "SOURCE_IP_PORT" in haproxy.lb_algorithms
    assert not {"UDP", "SCTP", "TERMINATED_HTTPS", "PROMETHEUS"} & haproxy.listener_protocols
    assert not {"TLS-HELLO", "UDP-CONNECT", "SCTP"} & haproxy.healthmonitor_types
    announcement = ProviderAnnouncement(
        agent_id="a", announced_at="2026-12-01T00:00:00Z", providers=list(declared.values())
    )
    assert ProviderAnnouncement.model_validate_json(announcement.model_dump_json()) == announcement


def test_only_changed_objects_are_checked_and_the_first_unsupported_option_is_named() -> None:
    spec = _spec(pool_protocol="PROXY", algorithm="SOURCE_IP_PORT", monitor="TLS-HELLO")
    assert BASELINE.first_unsupported(spec, set()) is None
    assert BASELINE.first_unsupported(spec, {LISTENER}) is None
    found = BASELINE.first_unsupported(spec, {POOL})
    assert found is not None and found.option == "pool protocol PROXY"
    assert found.field == "protocol"
    found = CAPABILITIES.first_unsupported(spec, {POOL, MONITOR})
    assert found is not None and found.option == "health monitor type TLS-HELLO"
    assert EVERY_OPTION.first_unsupported(spec, {LISTENER, POOL, MONITOR}) is None


@pytest.mark.parametrize("description", ["line\nbreak", "caf\u00e9", "x" * 256, "${SECRET}\x00"])
def test_declarations_carry_printable_ascii_only(description: str) -> None:
    with pytest.raises(ValidationError):
        ProviderAnnouncement.model_validate(
            {
                "agent_id": "a",
                "announced_at": "2026-12-01T00:00:00Z",
                "providers": [
                    {
                        "name": "x",
                        "description": description,
                        "capabilities": BASELINE.model_dump(mode="json"),
                    }
                ],
            }
        )


def _checked(config: str, tmp_path: Path) -> None:
    path = tmp_path / "haproxy.cfg"
    path.write_text("global\n    nbthread 1\n\n" + config)
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(path)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert refuse_foreign(config) is None


@pytest.mark.parametrize(
    ("protocol", "word"), [("PROXY", "send-proxy"), ("PROXYV2", "send-proxy-v2")]
)
@pytest.mark.parametrize(("listener", "mode"), [("HTTP", "http"), ("TCP", "tcp"), ("HTTPS", "tcp")])
def test_proxy_pools_send_the_header_in_their_listeners_mode(
    protocol: str, word: str, listener: str, mode: str, tmp_path: Path
) -> None:
    config = render(_spec(listener, protocol, monitor="TCP"))
    backend = config.split("backend ", 1)[1]
    assert f"    mode {mode}\n" in backend
    assert f"127.0.0.1:8080 weight 1 {word} check" in backend
    _checked(config, tmp_path)


def test_source_ip_port_hashes_the_address_and_port(tmp_path: Path) -> None:
    for listener, pool in (("HTTP", "HTTP"), ("TCP", "TCP")):
        config = render(_spec(listener, pool, "SOURCE_IP_PORT"))
        assert "    tcp-request content set-var(txn.src_port) src_port\n" in config
        assert "    balance hash src,concat(:,txn.src_port)\n" in config
        _checked(config, tmp_path)


@pytest.mark.parametrize(
    "spec",
    [
        _spec("UDP", "UDP"),
        _spec("SCTP", "SCTP"),
        _spec("TERMINATED_HTTPS", "HTTP"),
        _spec(monitor="TLS-HELLO"),
        _spec(monitor="UDP-CONNECT"),
        _spec(algorithm="SOURCE_IP_PORT ; lua.x"),
    ],
)
def test_options_the_haproxy_provider_does_not_declare_are_refused(spec: LoadBalancerSpec) -> None:
    with pytest.raises(Unrenderable):
        render(spec)


@pytest.mark.parametrize(
    "line",
    [
        "    balance hash src,lua.steal",
        "    balance hash req.hdr(x)",
        "    balance url_param secret",
        "    balance",
    ],
)
def test_the_device_accepts_only_the_renderers_algorithms(line: str) -> None:
    config = render(_spec()).replace("    balance roundrobin", line)
    assert refuse_foreign(config) is not None
