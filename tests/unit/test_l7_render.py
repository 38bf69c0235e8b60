"""L7 policies and rules: their allow-lists, how they render, and what a real HAProxy does.

The renderer refuses whatever the shared validators refuse; rule values stand in single
quotes after ``--``; the first matching policy by position wins, whatever its action.
"""

import asyncio
import contextlib
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_service.drivers.haproxy.render import Unrenderable, render
from device_service.instances import refuse_foreign
from shared.allow_lists import (
    MAX_L7_RULES_PER_POLICY,
    l7_policy_problem,
    l7_rule_problem,
    redirect_prefix_problem,
    redirect_url_problem,
)
from shared.messages import (
    L7PolicySpec,
    L7RuleSpec,
    ListenerSpec,
    LoadBalancerSpec,
    MemberSpec,
    PoolSpec,
)
from tests.support.haproxy import Backend
from tests.support.stack import free_port

GLOBAL = "global\n    nbthread 1\n\n"
POOLS = [uuid.UUID(int=0x100 + index) for index in range(3)]
"""The default pool (A), then two pools that only policies reach (B, C)."""
LISTENER = uuid.UUID(int=3)


def _rule(
    number: int,
    type: str,
    compare_type: str,
    value: str,
    *,
    key: str | None = None,
    invert: bool = False,
    up: bool = True,
) -> L7RuleSpec:
    return L7RuleSpec(
        id=uuid.UUID(int=0x2000 + number),
        type=type,
        compare_type=compare_type,
        key=key,
        value=value,
        invert=invert,
        admin_state_up=up,
    )


def _policy(
    number: int, position: int, action: str, rules: list[L7RuleSpec], **fields: Any
) -> L7PolicySpec:
    return L7PolicySpec(
        id=uuid.UUID(int=0x1000 + number), position=position, action=action, rules=rules, **fields
    )


def _spec(
    policies: list[L7PolicySpec],
    *,
    protocol: str = "HTTP",
    default: bool = True,
    ports: tuple[int, ...] = (9001, 9002, 9003),
    listener_port: int = 8080,
    pool_protocol: str = "HTTP",
) -> LoadBalancerSpec:
    pools = [
        PoolSpec(
            id=pool_id,
            protocol=pool_protocol if index else protocol,
            lb_algorithm="ROUND_ROBIN",
            admin_state_up=True,
            members=[
                MemberSpec(
                    id=uuid.UUID(int=0x300 + index),
                    address="127.0.0.1",
                    protocol_port=port,
                    weight=1,
                    backup=False,
                    admin_state_up=True,
                )
            ],
        )
        for index, (pool_id, port) in enumerate(zip(POOLS, ports, strict=True))
    ]
    listener = ListenerSpec(
        id=LISTENER,
        protocol=protocol,
        protocol_port=listener_port,
        admin_state_up=True,
        connection_limit=-1,
        default_pool_id=POOLS[0] if default else None,
        timeout_client_data=5000,
        timeout_member_connect=2000,
        timeout_member_data=7000,
        timeout_tcp_inspect=0,
        l7policies=policies,
    )
    return LoadBalancerSpec(
        id=uuid.UUID(int=1),
        project_id="p",
        admin_state_up=True,
        vip_address="127.0.0.1",
        generation=1,
        listeners=[listener],
        pools=pools,
    )


def _acl(number: int) -> str:
    return f"r-{uuid.UUID(int=0x2000 + number).hex}"


def _chosen(number: int) -> str:
    return f"p-{uuid.UUID(int=0x1000 + number).hex}"


def _frontend(config: str) -> list[str]:
    body = config.split(f"frontend listener-{LISTENER}\n", 1)[1].split("\n\n", 1)[0]
    return [line.strip() for line in body.splitlines()]


def _pool(index: int) -> str:
    return f"pool-{POOLS[index]}"


def _every_feature(*, rules_in_one: int = 3) -> list[L7PolicySpec]:
    """Each action, rule type and compare type, inversion, and what is left out."""
    many = [
        _rule(100 + n, "PATH", "STARTS_WITH", f"/many/{n}", invert=bool(n % 2))
        for n in range(rules_in_one)
    ]
    return [
        _policy(1, 1, "REDIRECT_TO_POOL", [_rule(1, "PATH", "STARTS_WITH", "/both")],
                redirect_pool_id=POOLS[1]),
        _policy(2, 2, "REJECT", [_rule(2, "PATH", "STARTS_WITH", "/b")]),
        _policy(3, 3, "REDIRECT_TO_URL", [_rule(3, "HOST_NAME", "EQUAL_TO", "redirect.example")],
                redirect_url="https://[2001:db8::1]:8443/x;y?a=1&b=(2)", redirect_http_code=308),
        _policy(4, 4, "REDIRECT_PREFIX", [_rule(4, "HEADER", "EQUAL_TO", "-f", key="X-Prefix")],
                redirect_prefix="https://prefix.example:8443"),
        _policy(5, 5, "REDIRECT_TO_POOL",
                [_rule(5, "HEADER", "REGEX", r"^a b#c\$d\w+[x]$", key="X-Re")],
                redirect_pool_id=POOLS[2]),
        _policy(6, 6, "REDIRECT_TO_POOL",
                [_rule(6, "FILE_TYPE", "EQUAL_TO", "jpg"),
                 _rule(7, "HEADER", "CONTAINS", "bot", key="User-Agent", invert=True)],
                redirect_pool_id=POOLS[2]),
        _policy(7, 7, "REDIRECT_TO_POOL", [_rule(8, "FILE_TYPE", "REGEX", "png|gif")],
                redirect_pool_id=POOLS[1]),
        _policy(8, 8, "REDIRECT_TO_POOL", [_rule(9, "PATH", "REGEX", r"${HOME}|^/re/\d+$")],
                redirect_pool_id=POOLS[1]),
        _policy(9, 9, "REJECT", [_rule(10, "HOST_NAME", "ENDS_WITH", ".reject.example")]),
        _policy(10, 10, "REJECT", [_rule(11, "PATH", "STARTS_WITH", "/", up=False)]),
        _policy(11, 11, "REJECT", [_rule(12, "PATH", "STARTS_WITH", "/")], admin_state_up=False),
        _policy(12, 12, "REDIRECT_TO_POOL", [_rule(13, "COOKIE", "EQUAL_TO", "abc", key="sess")],
                redirect_pool_id=POOLS[2]),
        _policy(13, 13, "REJECT",
                [_rule(14, "PATH", "EQUAL_TO", "/exact"), _rule(15, "PATH", "ENDS_WITH", "act"),
                 _rule(16, "PATH", "CONTAINS", "xac"),
                 _rule(17, "PATH", "STARTS_WITH", "/", up=False)]),
        _policy(14, 14, "REDIRECT_TO_URL",
                [_rule(18, "HOST_NAME", "REGEX", r"^www\d*\.example$"),
                 _rule(19, "HOST_NAME", "STARTS_WITH", "www"),
                 _rule(20, "HOST_NAME", "CONTAINS", "ww"),
                 _rule(21, "COOKIE", "REGEX", "^[0-9a-f]+$", key="id"),
                 _rule(22, "COOKIE", "STARTS_WITH", "0", key="id"),
                 _rule(23, "COOKIE", "ENDS_WITH", "f", key="id"),
                 _rule(24, "COOKIE", "CONTAINS", "a", key="id", invert=True),
                 _rule(25, "HEADER", "STARTS_WITH", "x", key="X-S"),
                 _rule(26, "HEADER", "ENDS_WITH", "y", key="X-S")],
                redirect_url="http://example.com"),
        _policy(15, 15, "REJECT", many),
    ]  # fmt: skip


@pytest.mark.parametrize("default", [True, False])
def test_every_l7_feature_renders_a_config_haproxy_accepts(tmp_path: Path, default: bool) -> None:
    config = tmp_path / "haproxy.cfg"
    rendered = render(_spec(_every_feature(rules_in_one=MAX_L7_RULES_PER_POLICY), default=default))
    config.write_text(GLOBAL + rendered)
    checked = subprocess.run(
        ["haproxy", "-c", "-f", str(config)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ALERT" not in checked.stdout + checked.stderr
    # Only the missing server-state-file (set by the device's global section) is warned about.
    warnings = [line for line in checked.stderr.splitlines() if "WARNING" in line]
    assert all("server-state-file" in line for line in warnings), warnings
    assert '"' not in rendered
    assert refuse_foreign(rendered) is None


def test_the_same_spec_gives_the_same_bytes_in_the_spec_order() -> None:
    # Ids in decreasing order: the spec's order is kept, not the ids'.
    policies = [
        _policy(9, 1, "REJECT", [_rule(9, "PATH", "EQUAL_TO", "/9")]),
        _policy(5, 2, "REJECT",
                [_rule(8, "PATH", "EQUAL_TO", "/8"), _rule(2, "PATH", "EQUAL_TO", "/2")]),
        _policy(1, 3, "REDIRECT_TO_POOL", [_rule(1, "PATH", "EQUAL_TO", "/1")],
                redirect_pool_id=POOLS[1]),
    ]  # fmt: skip
    first, second = render(_spec(policies)), render(_spec(policies))
    assert first == second
    lines = _frontend(first)
    acls = [line.split()[1] for line in lines if line.startswith("acl r-")]
    assert acls == [_acl(9), _acl(8), _acl(2), _acl(1)]
    chosen = [line.split()[2] for line in lines if line.startswith("http-request set-var")]
    assert chosen == [f"str({_chosen(n)[2:]})" for n in (9, 5, 1)]


def test_each_rule_type_and_compare_type_renders_its_acl() -> None:
    lines = _frontend(render(_spec(_every_feature())))
    assert f"acl {_acl(1)} path -m beg -- '/both'" in lines
    assert f"acl {_acl(3)} req.hdr(host),field(1,:) -i -m str -- 'redirect.example'" in lines
    assert f"acl {_acl(4)} req.hdr(X-Prefix) -m str -- '-f'" in lines
    assert f"acl {_acl(5)} req.hdr(X-Re) -m reg -- '^a b#c\\$d\\w+[x]$'" in lines
    assert f"acl {_acl(6)} path -m end -- '.jpg'" in lines
    assert f"acl {_acl(7)} req.hdr(User-Agent) -m sub -- 'bot'" in lines
    assert f"acl {_acl(8)} path -m reg -- '\\.(?:png|gif)$'" in lines
    assert f"acl {_acl(10)} req.hdr(host),field(1,:) -i -m end -- '.reject.example'" in lines
    assert f"acl {_acl(13)} req.cook(sess) -m str -- 'abc'" in lines
    assert f"acl {_acl(15)} path -m end -- 'act'" in lines
    assert f"acl {_acl(16)} path -m sub -- 'xac'" in lines
    assert f"acl {_acl(18)} req.hdr(host),field(1,:) -i -m reg -- '^www\\d*\\.example$'" in lines
    assert f"acl {_acl(19)} req.hdr(host),field(1,:) -i -m beg -- 'www'" in lines
    assert f"acl {_acl(20)} req.hdr(host),field(1,:) -i -m sub -- 'ww'" in lines
    assert f"acl {_acl(21)} req.cook(id) -m reg -- '^[0-9a-f]+$'" in lines
    assert f"acl {_acl(22)} req.cook(id) -m beg -- '0'" in lines
    assert f"acl {_acl(23)} req.cook(id) -m end -- 'f'" in lines
    assert f"acl {_acl(24)} req.cook(id) -m sub -- 'a'" in lines
    assert f"acl {_acl(25)} req.hdr(X-S) -m beg -- 'x'" in lines


def test_each_action_renders_after_every_choice_and_before_default_backend() -> None:
    lines = _frontend(render(_spec(_every_feature())))
    assert "acl l7-chosen var(txn.l7_policy) -m found" in lines
    assert (
        f"http-request set-var(txn.l7_policy) str({_chosen(6)[2:]}) if !l7-chosen"
        f" {_acl(6)} !{_acl(7)}"
    ) in lines
    assert f"acl {_chosen(6)} var(txn.l7_policy) -m str {_chosen(6)[2:]}" in lines
    actions = [line for line in lines if line.startswith(("http-request deny", "http-request re"))]
    assert actions == [
        f"http-request deny deny_status 403 if {_chosen(2)}",
        "http-request redirect location https://[2001:db8::1]:8443/x;y?a=1&b=(2) code 308"
        f" if {_chosen(3)}",
        f"http-request redirect prefix https://prefix.example:8443 code 302 if {_chosen(4)}",
        f"http-request deny deny_status 403 if {_chosen(9)}",
        f"http-request deny deny_status 403 if {_chosen(13)}",
        f"http-request redirect location http://example.com code 302 if {_chosen(14)}",
        f"http-request deny deny_status 403 if {_chosen(15)}",
    ]
    switches = [line for line in lines if line.startswith("use_backend")]
    assert switches == [
        f"use_backend {_pool(1)} if {_chosen(1)}",
        f"use_backend {_pool(2)} if {_chosen(5)}",
        f"use_backend {_pool(2)} if {_chosen(6)}",
        f"use_backend {_pool(1)} if {_chosen(7)}",
        f"use_backend {_pool(1)} if {_chosen(8)}",
        f"use_backend {_pool(2)} if {_chosen(12)}",
    ]
    last_choice = max(i for i, line in enumerate(lines) if line.startswith("http-request set-var"))
    assert last_choice < lines.index(actions[0])
    assert lines.index(actions[-1]) < lines.index(switches[0])
    assert lines.index(switches[-1]) < lines.index(f"default_backend {_pool(0)}")


def test_without_a_default_pool_only_requests_for_a_pool_policy_pass() -> None:
    lines = _frontend(render(_spec(_every_feature(), default=False)))
    deny = lines.index("http-request deny deny_status 503 unless l7-chosen")
    assert deny < min(i for i, line in enumerate(lines) if line.startswith("use_backend"))
    assert not any(line.startswith("default_backend") for line in lines)
    rejecting = [_policy(1, 1, "REJECT", [_rule(1, "PATH", "EQUAL_TO", "/x")])]
    assert "http-request deny deny_status 503" in _frontend(render(_spec(rejecting, default=False)))


def test_disabled_policies_and_rules_and_policies_without_enabled_rules_are_left_out() -> None:
    left_out = [
        _policy(1, 1, "REJECT", [_rule(1, "PATH", "STARTS_WITH", "/")], admin_state_up=False),
        _policy(2, 2, "REJECT", [_rule(2, "PATH", "STARTS_WITH", "/", up=False)]),
        _policy(3, 3, "REJECT", []),
        _policy(4, 4, "REDIRECT_TO_POOL", [_rule(4, "PATH", "STARTS_WITH", "/")],
                redirect_pool_id=uuid.UUID(int=999), admin_state_up=False),
    ]  # fmt: skip
    assert render(_spec(left_out)) == render(_spec([]))
    assert "l7" not in render(_spec(left_out))
    lines = _frontend(render(_spec(_every_feature())))
    for number in (11, 12, 17):
        assert _acl(number) not in "\n".join(lines)
    for number in (10, 11):
        assert _chosen(number) not in "\n".join(lines)


def test_a_pool_reached_only_by_a_policy_has_the_listeners_timeouts() -> None:
    config = render(_spec(_every_feature()))
    backend = config.split(f"backend {_pool(1)}\n", 1)[1].split("\n\n", 1)[0]
    assert "timeout connect 2000ms" in backend
    assert "timeout server 7000ms" in backend


@pytest.mark.parametrize("protocol", ["TCP", "HTTPS"])
def test_policies_on_a_listener_that_is_not_http_are_refused(protocol: str) -> None:
    policies = [_policy(1, 1, "REJECT", [_rule(1, "PATH", "STARTS_WITH", "/")])]
    with pytest.raises(Unrenderable):
        render(_spec(policies, protocol=protocol, pool_protocol=protocol))
    assert "frontend" in render(_spec([], protocol=protocol, pool_protocol=protocol))


@pytest.mark.parametrize(
    "changes",
    [
        {"redirect_pool_id": uuid.UUID(int=999)},
        {"redirect_pool_id": None},
        {"action": "REDIRECT_TO_SOMEWHERE"},
        {"action": "REDIRECT_TO_URL"},
        {"action": "REDIRECT_PREFIX"},
        {"redirect_http_code": 200},
        {"redirect_http_code": 304},
    ],
)
def test_a_policy_without_what_its_action_needs_is_refused(changes: dict[str, Any]) -> None:
    policy = _policy(
        1, 1, "REDIRECT_TO_POOL", [_rule(1, "PATH", "STARTS_WITH", "/")], redirect_pool_id=POOLS[1]
    )
    assert render(_spec([policy]))
    with pytest.raises(Unrenderable):
        render(_spec([policy.model_copy(update=changes)]))


def test_a_redirect_to_a_tcp_pool_is_refused() -> None:
    policy = _policy(
        1, 1, "REDIRECT_TO_POOL", [_rule(1, "PATH", "STARTS_WITH", "/")], redirect_pool_id=POOLS[1]
    )
    with pytest.raises(Unrenderable):
        render(_spec([policy], pool_protocol="TCP"))


def test_a_redirect_to_a_proxy_pool_a_tcp_listener_uses_is_refused() -> None:
    """The pool's backend runs in the mode of the TCP listener it is the default pool of, so
    an HTTP listener cannot switch to it."""
    policy = _policy(
        1, 1, "REDIRECT_TO_POOL", [_rule(1, "PATH", "STARTS_WITH", "/")], redirect_pool_id=POOLS[1]
    )
    spec = _spec([policy], pool_protocol="PROXY")
    assert "mode http" in render(spec), "alone, the PROXY pool runs in the HTTP listener's mode"
    tcp = spec.listeners[0].model_copy(
        update={
            "id": uuid.UUID(int=4),
            "protocol": "TCP",
            "protocol_port": 8081,
            "default_pool_id": POOLS[1],
            "l7policies": [],
        }
    )
    with pytest.raises(Unrenderable, match="PROXY pool"):
        render(spec.model_copy(update={"listeners": [tcp, *spec.listeners]}))


def test_too_many_rules_and_ids_seen_twice_are_refused() -> None:
    too_many = [_rule(n, "PATH", "STARTS_WITH", "/x") for n in range(MAX_L7_RULES_PER_POLICY + 1)]
    with pytest.raises(Unrenderable):
        render(_spec([_policy(1, 1, "REJECT", too_many)]))
    twice = [_rule(1, "PATH", "STARTS_WITH", "/x"), _rule(1, "PATH", "STARTS_WITH", "/y")]
    with pytest.raises(Unrenderable):
        render(_spec([_policy(1, 1, "REJECT", twice)]))


# The dangerous part of a value; each follows a value that is otherwise allowed.
ATTACKS = [
    "\nlisten pwned\n    bind 127.0.0.3:18099",
    "\r\nx",
    "\x00",
    "\t",
    " #comment",
    "#",
    '"',
    "'",
    "${LBAAS_DEVICE_SECRET}",
    "%[env(HOME)]",
    "\\n",
    "\\",
    " if TRUE",
    "a" * 300,
    "\u00e9",
    "\uff0e",
]
BASES = {
    ("PATH", "STARTS_WITH", None): "/ok",
    ("PATH", "CONTAINS", None): "ok",
    ("HOST_NAME", "EQUAL_TO", None): "ok.example",
    ("FILE_TYPE", "EQUAL_TO", None): "jpg",
    ("HEADER", "ENDS_WITH", "X-Ok"): "ok",
    ("COOKIE", "EQUAL_TO", "ok"): "ok",
}


@pytest.mark.parametrize("attack", ATTACKS)
@pytest.mark.parametrize(("type", "compare_type", "key"), list(BASES))
def test_injections_in_rule_values_are_refused(
    type: str, compare_type: str, key: str | None, attack: str
) -> None:
    base = BASES[type, compare_type, key]
    assert render(_spec([_policy(1, 1, "REJECT", [_rule(1, type, compare_type, base, key=key)])]))
    for value in (base + attack, attack + base):
        rule = _rule(1, type, compare_type, value, key=key)
        assert l7_rule_problem(type, compare_type, key, value) is not None
        with pytest.raises(Unrenderable):
            render(_spec([_policy(1, 1, "REJECT", [rule])]))


@pytest.mark.parametrize(
    "value",
    [
        "a\nb",
        "a\r",
        "a\x00",
        "a\tb",
        "a'b",
        "'",
        'a"b',
        "caf\u00e9",
        "a" * 256,
        "",
        "(",
        "a)|(b",
        "[a",
        "a**",
        "(a)\\1",  # HAProxy's groups do not capture: no numbered back-references
        "(a)?(?(1)a|b)",
        "\\u0041",
        "(?a)x",
        "a{,3}",
        "[[:alpha:]]",
    ],
)
def test_a_regex_that_cannot_be_rendered_or_compiled_is_refused(value: str) -> None:
    for type, key in (("PATH", None), ("HEADER", "X-Ok"), ("FILE_TYPE", None)):
        assert l7_rule_problem(type, "REGEX", key, value) is not None, (type, value)
        with pytest.raises(Unrenderable):
            render(_spec([_policy(1, 1, "REJECT", [_rule(1, type, "REGEX", value, key=key)])]))


@pytest.mark.parametrize(
    "value", [r"^a b#c\${HOME}%[env(HOME)]\\$", "-f /etc/passwd", r"\x22\x27", "(?i:jpg)"]
)
def test_a_regex_stands_in_single_quotes_after_double_dash_as_it_is(value: str) -> None:
    lines = _frontend(render(_spec([_policy(1, 1, "REJECT", [_rule(1, "PATH", "REGEX", value)])])))
    assert f"acl {_acl(1)} path -m reg -- '{value}'" in lines


@pytest.mark.parametrize(
    "key",
    ["X-Ok\nlisten x", "X-Ok\r", "X-Ok\x00", "X-Ok)", "X-Ok,1", "X Ok", "X-Ok#", "X-Ok'",
     'X-Ok"', "X-${HOME}", "X-%[env(HOME)]", "X-Ok\\", "X-\u00e9", "a" * 256, "", None],
)  # fmt: skip
def test_injections_in_rule_keys_are_refused(key: str | None) -> None:
    for type in ("HEADER", "COOKIE"):
        rule = _rule(1, type, "EQUAL_TO", "ok", key=key)
        with pytest.raises(Unrenderable):
            render(_spec([_policy(1, 1, "REJECT", [rule])]))


@pytest.mark.parametrize(
    "url",
    [
        "https://ok.example/a\nlisten x",
        "https://ok.example/a\r\n",
        "https://ok.example/\x00",
        "https://ok.example/a#frag",
        "https://ok.example/a b",
        "https://ok.example/ code 301",
        "https://ok.example/'",
        'https://ok.example/"',
        "https://ok.example/${LBAAS_DEVICE_SECRET}",
        "https://ok.example/%[env(HOME)]",
        "https://ok.example/%41",
        "https://ok.example/\\",
        "https://ok.example/" + "a" * 300,
        "https://caf\u00e9.example/",
        "ftp://ok.example/",
        "//ok.example/",
        "/relative",
        "javascript:alert(1)",
        "https://user@ok.example/",
        "https://ok.example:99999/",
        "https://ok.example:0/",
        "https://[fe80::1%eth0]/",
        "https://[not:an:ip:zz]/",
        "https://-ok.example/",
        "https://ok..example/",
        "",
    ],
)
def test_injections_in_redirect_urls_and_prefixes_are_refused(url: str) -> None:
    rule = _rule(1, "PATH", "STARTS_WITH", "/")
    for action, field in (
        ("REDIRECT_TO_URL", "redirect_url"),
        ("REDIRECT_PREFIX", "redirect_prefix"),
    ):
        good = "https://ok.example" + ("/a?b=c" if action == "REDIRECT_TO_URL" else "")
        policy = _policy(1, 1, action, [rule], **{field: good})
        assert render(_spec([policy]))
        with pytest.raises(Unrenderable):
            render(_spec([policy.model_copy(update={field: url})]))


@pytest.mark.parametrize(
    "prefix", ["https://ok.example/", "https://ok.example/a", "https://ok.example?a"]
)
def test_a_redirect_prefix_has_no_path(prefix: str) -> None:
    assert redirect_prefix_problem(prefix) is not None
    assert redirect_url_problem(prefix.replace("?", "/?")) is None


def test_the_shared_validators_as_the_api_calls_them() -> None:
    assert l7_rule_problem("PATH", "STARTS_WITH", None, "/api") is None
    assert l7_rule_problem("PATH", "CONTAINS", None, "api/v1") is None
    assert l7_rule_problem("PATH", "EQUAL_TO", None, "/a%2Fb") is None
    assert l7_rule_problem("PATH", "EQUAL_TO", None, "api") is not None  # not a path
    assert l7_rule_problem("PATH", "EQUAL_TO", None, "/a?b") is not None  # never in a path
    assert l7_rule_problem("PATH", "EQUAL_TO", None, "/a%2") is not None
    assert l7_rule_problem("HOST_NAME", "ENDS_WITH", None, ".example.com") is None
    assert l7_rule_problem("HOST_NAME", "EQUAL_TO", None, "*.example.com") is not None
    assert l7_rule_problem("HOST_NAME", "EQUAL_TO", None, "example.com:80") is not None
    assert l7_rule_problem("HOST_NAME", "EQUAL_TO", "Host", "example.com") is not None
    assert l7_rule_problem("FILE_TYPE", "EQUAL_TO", None, "jpg") is None
    assert l7_rule_problem("FILE_TYPE", "EQUAL_TO", None, ".jpg") is not None
    assert l7_rule_problem("FILE_TYPE", "STARTS_WITH", None, "jpg") is not None
    assert l7_rule_problem("FILE_TYPE", "REGEX", None, "jpe?g|png") is None
    assert l7_rule_problem("FILE_TYPE", "REGEX", None, "(?i)jpg") is not None
    assert l7_rule_problem("HEADER", "CONTAINS", "X-Forwarded-For", "10.0.0.1") is None
    assert l7_rule_problem("HEADER", "CONTAINS", "X-Forwarded-For", "10.0.0.1,") is not None
    assert l7_rule_problem("HEADER", "EQUAL_TO", "Accept", "text/html;q=0.9") is None
    assert l7_rule_problem("COOKIE", "EQUAL_TO", "session", "a;b") is not None
    assert l7_rule_problem("HEADER", "CONTAINS", None, "x") is not None
    assert l7_rule_problem("COOKIE", "EQUAL_TO", "session", "a=b") is None
    assert l7_rule_problem("COOKIE", "REGEX", "session", r"^(?P<x>\d)(?P=x)$") is None
    assert l7_rule_problem("COOKIE", "REGEX", "session", r"^\\1$") is None  # an escaped \
    assert l7_rule_problem("SSL_DN_FIELD", "EQUAL_TO", None, "x") is not None
    assert l7_rule_problem("PATH", "LIKE", None, "/x") is not None
    assert l7_policy_problem("REJECT") is None
    assert l7_policy_problem("REDIRECT_TO_POOL", redirect_pool_id=POOLS[1]) is None
    assert l7_policy_problem("REDIRECT_TO_POOL") is not None
    assert l7_policy_problem("REDIRECT_TO_URL", redirect_url="http://a.example") is None
    assert l7_policy_problem("REDIRECT_TO_URL", redirect_prefix="http://a.example") is not None
    assert l7_policy_problem("REDIRECT_PREFIX", redirect_prefix="http://a.example:81") is None
    for code in (301, 302, 303, 307, 308):
        assert (
            l7_policy_problem(
                "REDIRECT_PREFIX", redirect_prefix="http://a", redirect_http_code=code
            )
            is None
        )
    for bad in (200, 300, 304, 309, True):
        assert l7_policy_problem(
            "REDIRECT_PREFIX", redirect_prefix="http://a", redirect_http_code=bad
        )
    assert l7_policy_problem("REJECT", redirect_url="http://a/%41") is not None  # always checked


async def test_a_real_haproxy_applies_the_first_matching_policy(tmp_path: Path) -> None:
    """Traffic on 127.0.0.1 through the rendered configuration, to three backends A, B, C."""
    backends = [Backend(name) for name in "ABC"]
    port = free_port()
    found = "https://[2001:db8::1]:8443/x;y?a=1&b=(2)"
    cases: list[tuple[str, dict[str, str], int, str | None]] = [
        ("/both", {}, 200, "B"),  # REDIRECT_TO_POOL at 1 wins over REJECT at 2
        ("/bx", {}, 403, None),
        ("/q", {"Host": "redirect.example:8080"}, 308, found),  # the port is not compared
        ("/q", {"Host": "REDIRECT.Example"}, 308, found),
        ("/q", {"Host": "redirect.example.evil"}, 200, "A"),
        ("/p?q=1", {"X-Prefix": "-f"}, 302, "https://prefix.example:8443/p?q=1"),
        ("/x", {"X-Re": "a b#c$dzz9x"}, 200, "C"),  # nothing in the quotes was interpreted
        ("/img/a.jpg", {}, 200, "C"),
        ("/img/a.jpg", {"User-Agent": "googlebot"}, 200, "A"),  # inverted rule
        ("/img/a.png", {}, 200, "B"),
        ("/img/a.pngx", {}, 200, "A"),
        ("/img/apng", {}, 200, "A"),
        ("/re/123", {}, 200, "B"),
        ("/expanded", {}, 200, "A"),  # ${HOME} was not expanded in the regex
        ("/other", {"Host": "x.reject.example:8080"}, 403, None),
        ("/other", {"Cookie": "a=1; sess=abc"}, 200, "C"),
        ("/other", {"Cookie": "sess=abcd"}, 200, "A"),
        ("/exact", {}, 403, None),  # all of its enabled rules match
        ("/exactly", {}, 200, "A"),
        ("/other", {}, 200, "A"),  # disabled policies and rules would reject everything
    ]
    failures = await _serve(tmp_path, backends, port, _every_feature(), True, cases)
    failures += await _serve(
        tmp_path,
        backends,
        port,
        _every_feature(),
        False,
        [("/both", {}, 200, "B"), ("/other", {}, 503, None), ("/bx", {}, 403, None)],
    )
    assert not failures


async def _serve(
    tmp_path: Path,
    backends: list[Backend],
    port: int,
    policies: list[L7PolicySpec],
    default: bool,
    cases: list[tuple[str, dict[str, str], int, str | None]],
) -> list[str]:
    ports = tuple(backend.port for backend in backends)
    config = tmp_path / "live.cfg"
    config.write_text(
        GLOBAL + render(_spec(policies, default=default, ports=ports, listener_port=port))
    )
    for backend in backends:
        await backend.start()
    process = await asyncio.create_subprocess_exec(
        "haproxy",
        "-db",
        "-f",
        str(config),
        env={"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin"), "HOME": "/expanded"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    failures = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
            for _ in range(100):
                with contextlib.suppress(httpx.TransportError):
                    await http.get("/other")
                    break
                await asyncio.sleep(0.05)
            for path, headers, status, expected in cases:
                response = await http.get(path, headers=headers)
                got = response.headers.get("location") if response.is_redirect else response.text
                if response.status_code != status or (expected is not None and got != expected):
                    failures.append(f"{path} {headers}: {response.status_code} {got}")
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            process.kill()
            await process.wait()
        for backend in backends:
            await backend.stop()
    return failures
