"""The HAProxy renderer: deterministic, named from ids, and refusing what must not be rendered."""

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from agent_service.drivers.haproxy.health import member_status
from agent_service.drivers.haproxy.render import DEFAULTS, Unrenderable, render
from device_service.instances import refuse_foreign
from shared.device_api import ServerState
from shared.messages import (
    HealthMonitorSpec,
    ListenerSpec,
    LoadBalancerSpec,
    MemberSpec,
    PoolSpec,
    SessionPersistenceSpec,
)
from shared.status import OperatingStatus

INJECTIONS = [
    "/ok\nlisten pwned\n bind 127.0.0.3:18099",
    "/ok\r\nx",
    "/ok\x00",
    "/ok #comment",
    '/ok"',
    "/ok'",
    "/${LBAAS_DEVICE_SECRET}",
    "/%[env(HOME)]",
    "/ok\\n",
    "/" + "a" * 300,
    "/caf\u00e9",
]


def _spec(**pool_changes: Any) -> LoadBalancerSpec:
    pool_id = uuid.UUID(int=2)
    monitor = HealthMonitorSpec(
        id=uuid.UUID(int=4),
        type="HTTP",
        delay=2,
        timeout=1,
        max_retries=2,
        max_retries_down=3,
        admin_state_up=True,
        http_method="GET",
        url_path="/health",
        expected_codes="200-204,301",
    )
    pool = PoolSpec(
        id=pool_id,
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        admin_state_up=True,
        session_persistence=SessionPersistenceSpec(type="HTTP_COOKIE"),
        members=[
            MemberSpec(
                id=uuid.UUID(int=10),
                address="10.0.0.1",
                protocol_port=80,
                weight=0,
                backup=False,
                admin_state_up=True,
            ),
            MemberSpec(
                id=uuid.UUID(int=11),
                address="2001:db8::1",
                protocol_port=8080,
                weight=5,
                backup=True,
                admin_state_up=False,
                monitor_address="2001:db8::2",
                monitor_port=81,
            ),
        ],
        healthmonitor=monitor,
    ).model_copy(update=pool_changes)
    return LoadBalancerSpec(
        id=uuid.UUID(int=1),
        project_id="p",
        admin_state_up=True,
        vip_address="127.0.0.5",
        generation=7,
        listeners=[
            ListenerSpec(
                id=uuid.UUID(int=3),
                protocol="HTTP",
                protocol_port=8080,
                admin_state_up=True,
                connection_limit=100,
                default_pool_id=pool_id,
                timeout_client_data=1000,
                timeout_member_connect=2000,
                timeout_member_data=3000,
                timeout_tcp_inspect=0,
                insert_headers={"X-Forwarded-For": "true", "X-Forwarded-Proto": "False"},
                allowed_cidrs=["10.0.0.0/8", "2001:db8::/32"],
            )
        ],
        pools=[pool],
    )


def test_the_same_spec_gives_the_same_bytes_named_from_ids_only() -> None:
    first, second = render(_spec()), render(_spec())
    assert first == second
    assert "frontend listener-00000000-0000-0000-0000-000000000003" in first
    assert "backend pool-00000000-0000-0000-0000-000000000002" in first
    assert "server member-00000000-0000-0000-0000-00000000000a 10.0.0.1:80 weight 0" in first
    assert (
        "server member-00000000-0000-0000-0000-00000000000b [2001:db8::1]:8080 weight 5 backup"
        " check addr [2001:db8::2] port 81" in first
    )
    assert '"' not in first


def test_every_feature_renders_a_config_haproxy_accepts(tmp_path: Path) -> None:
    config = tmp_path / "haproxy.cfg"
    config.write_text("global\n    nbthread 1\n\n" + render(_spec()))
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "option forwardfor" in config.read_text()
    assert "X-Forwarded-Proto" not in config.read_text()


@pytest.mark.parametrize("value", INJECTIONS)
def test_an_url_path_outside_the_allow_list_is_refused(value: str) -> None:
    monitor = _spec().pools[0].healthmonitor
    assert monitor is not None
    with pytest.raises(Unrenderable):
        render(_spec(healthmonitor=monitor.model_copy(update={"url_path": value})))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expected_codes", "200\nlisten x"),
        ("expected_codes", "200 #"),
        ("expected_codes", "2OO"),
        ("http_method", "GET\n"),
        ("http_method", "get"),
        ("type", "UDP-CONNECT"),
        ("delay", 0),
    ],
)
def test_monitor_values_outside_their_allow_lists_are_refused(field: str, value: object) -> None:
    monitor = _spec().pools[0].healthmonitor
    assert monitor is not None
    with pytest.raises(Unrenderable):
        render(_spec(healthmonitor=monitor.model_copy(update={field: value})))


@pytest.mark.parametrize(
    "address", ["10.0.0.1\n", "10.0.0.1 #", "host.example", "10.0.0.1:80", "fe80::1%eth0", ""]
)
def test_addresses_are_parsed_and_refused_when_not_an_ip(address: str) -> None:
    member = _spec().pools[0].members[0].model_copy(update={"address": address})
    with pytest.raises(Unrenderable):
        render(_spec(members=[member]))


@pytest.mark.parametrize(
    ("persistence", "protocol"),
    [
        (SessionPersistenceSpec(type="APP_COOKIE", cookie_name="a b"), "HTTP"),
        (SessionPersistenceSpec(type="APP_COOKIE", cookie_name="${X}"), "HTTP"),
        (SessionPersistenceSpec(type="APP_COOKIE", cookie_name="x\n"), "HTTP"),
        (SessionPersistenceSpec(type="HTTP_COOKIE"), "TCP"),
        (SessionPersistenceSpec(type="STICKY"), "HTTP"),
    ],
)
def test_persistence_outside_what_haproxy_can_do_is_refused(
    persistence: SessionPersistenceSpec, protocol: str
) -> None:
    with pytest.raises(Unrenderable):
        render(_spec(session_persistence=persistence, protocol=protocol))


def test_listener_values_are_re_validated() -> None:
    listener = _spec().listeners[0]
    for changes in (
        {"allowed_cidrs": ["10.0.0.1/8"]},
        {"allowed_cidrs": ["10.0.0.0/8 #"]},
        {"insert_headers": {"X-Forwarded-For": "yes"}},
        {"insert_headers": {"X-Evil\nfoo": "true"}},
        {"protocol": "UDP"},
        {"protocol_port": 70000},
    ):
        spec = _spec().model_copy(update={"listeners": [listener.model_copy(update=changes)]})
        with pytest.raises(Unrenderable):
            render(spec)


@pytest.mark.parametrize(
    ("status", "weight", "expected"),
    [
        ("UP", 1, OperatingStatus.ONLINE),
        ("UP 1/2", 1, OperatingStatus.ONLINE),
        ("DOWN", 1, OperatingStatus.ERROR),
        ("DOWN 1/2", 1, OperatingStatus.ERROR),
        ("DRAIN", 0, OperatingStatus.DRAINING),
        ("UP", 0, OperatingStatus.DRAINING),
        ("MAINT", 1, OperatingStatus.OFFLINE),
        ("MAINT (resolution)", 1, OperatingStatus.OFFLINE),
        ("no check", 1, OperatingStatus.NO_MONITOR),
    ],
)
def test_member_status_as_octavia_maps_it(
    status: str, weight: int, expected: OperatingStatus
) -> None:
    assert member_status(ServerState(backend="b", status=status, weight=weight)) is expected


def test_the_device_accepts_what_the_renderer_makes_and_refuses_foreign_sections() -> None:
    assert refuse_foreign(render(_spec())) is None
    for foreign in (
        "global\n    lua-load /tmp/x.lua\n",
        "listen x\n    bind :1\n",
        "backend b\n    http-request return status 200 file /etc/shadow\n",
        "backend b\n    errorfile 503 /etc/shadow\n",
        "backend b\n    server s 1.2.3.4:443 ssl ca-file /etc/ssl/x\n",
        "backend b\n    option external-check\n",
        "program p\n    command /bin/sh\n",
    ):
        assert refuse_foreign(DEFAULTS + foreign) is not None, foreign


def test_the_device_refuses_quoting_tricks_and_file_reading_words() -> None:
    for foreign in (
        "backend b\n    server s 10.0.0.1:443 ''crt /x\n",
        "backend b\n    server s 10.0.0.1:443 'c'rt /x\n",
        'backend b\n    server s 10.0.0.1:443 "crt" /x\n',
        "backend b\n    acl x path -f /etc/x\n",
        "frontend f\n    http-request set-var(txn.x) req.hdr(host),map(/etc/passwd)\n",
        "frontend f\n    acl x lua.fn -m found\n",
        "frontend f\n    http-request redirect location /a%[env(HOME)]\n",
    ):
        assert refuse_foreign(DEFAULTS + foreign) is not None, foreign
    allowed = "frontend f\n    acl r path -m beg -- '/file map lua.x \"%[y]'\n"
    assert refuse_foreign(DEFAULTS + allowed) is None
