"""A load balancer's spec as HAProxy configuration: deterministic, and safe by construction.

The same spec always gives the same bytes. Sections and servers are named
from ids; no name, description or other free text of the user is ever
rendered. Every value that is rendered is validated again here, with the
API's allow-lists, and a value that fails is refused (:class:`Unrenderable`),
never escaped: addresses and networks are parsed and re-serialised, numbers
are integers, keywords come from enums, and the few strings (URL path,
expected codes, cookie name) must match their allow-list whole
(``fullmatch``). Nothing is ever put in double quotes, where HAProxy would
expand ``${VARIABLES}``; the values of L7 rules are put in single quotes, where
HAProxy interprets nothing, and a single quote is refused (:func:`_l7`).
"""

import re
from collections.abc import Iterator
from ipaddress import IPv6Address, ip_address, ip_network
from uuid import UUID

from agent_service.drivers import Refused
from shared.allow_lists import (
    COOKIE_NAME,
    DEFAULT_REDIRECT_HTTP_CODE,
    EXPECTED_CODES,
    MAX_L7_RULES_PER_POLICY,
    URL_PATH,
    file_type_regex,
    l7_policy_problem,
    l7_rule_problem,
)
from shared.capabilities import BASELINE
from shared.messages import (
    HealthMonitorSpec,
    L7PolicySpec,
    L7RuleSpec,
    ListenerSpec,
    LoadBalancerSpec,
    MemberSpec,
    PoolSpec,
    SessionPersistenceSpec,
)

_MODES = {"HTTP": "http", "HTTPS": "tcp", "TCP": "tcp"}
"""HTTPS listeners and pools pass TLS through: HAProxy sees TCP."""
_PROXY_PROTOCOLS = {"PROXY": "send-proxy", "PROXYV2": "send-proxy-v2"}
"""Pools whose members are sent the PROXY protocol header (v1, v2) before the client's
bytes; the backend runs in the mode of the listener that uses it."""
_SOURCE_PORT = "txn.src_port"
_ALGORITHMS = {
    "ROUND_ROBIN": "roundrobin",
    "LEAST_CONNECTIONS": "leastconn",
    "SOURCE_IP": "source",
    "SOURCE_IP_PORT": f"hash src,concat(:,{_SOURCE_PORT})",
}
"""SOURCE_IP_PORT hashes ``<source address>:<source port>`` (the port is put in
:data:`_SOURCE_PORT` first: ``concat`` appends variables only)."""
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "PATCH"})
_MONITOR_TYPES = frozenset({"HTTP", "HTTPS", "TCP", "PING"})
_TRUE = frozenset({"true", "True"})
_STICK_TABLE = "size 100k expire 30m"
_MATCHES = {
    "REGEX": "reg",
    "STARTS_WITH": "beg",
    "ENDS_WITH": "end",
    "CONTAINS": "sub",
    "EQUAL_TO": "str",
}
_QUOTABLE = re.compile(r"\A[ !#-&(-~]+\Z")
"""What may stand between single quotes: printable ASCII but the quotes."""
_CHOSEN = "txn.l7_policy"
"""The variable holding the hex id of the first L7 policy that matched the request."""

_CLIENT_ADDRESS_HEADERS = frozenset({"X-Forwarded-IP", "X-Client-IP", "X-Real-IP"})
"""Headers that carry the client's address alone (``%[src]``)."""

CAPABILITIES = BASELINE.model_copy(
    update={
        "pool_protocols": BASELINE.pool_protocols | frozenset(_PROXY_PROTOCOLS),
        "lb_algorithms": frozenset(_ALGORITHMS),
        "insert_headers": BASELINE.insert_headers | _CLIENT_ADDRESS_HEADERS,
    }
)
"""What this renderer can render: the ``haproxy`` provider's capabilities."""
assert set(CAPABILITIES.listener_protocols) == set(_MODES)
assert set(CAPABILITIES.pool_protocols) == set(_MODES) | set(_PROXY_PROTOCOLS)
assert set(CAPABILITIES.healthmonitor_types) == _MONITOR_TYPES

DEFAULTS = """\
defaults
    timeout connect 5s
    timeout client 50s
    timeout server 50s
    timeout check 5s
    option redispatch
    retries 3
    load-server-state-from-file global
"""


class Unrenderable(Refused, ValueError):
    """A value of the spec is outside what may reach a HAProxy configuration."""


def section(prefix: str, object_id: UUID) -> str:
    """The name of a frontend (``listener``), backend (``pool``) or server (``member``)."""
    return f"{prefix}-{UUID(str(object_id))}"


def render(spec: LoadBalancerSpec) -> str:
    """The whole configuration of ``spec`` (the device adds its own ``global`` section)."""
    users = _users(spec)
    parts = [DEFAULTS]
    parts += ["\n".join(_frontend(spec, listener, users)) + "\n" for listener in spec.listeners]
    parts += ["\n".join(_backend(pool, users.get(pool.id))) + "\n" for pool in spec.pools]
    return "\n".join(parts)


def _users(spec: LoadBalancerSpec) -> dict[UUID | None, ListenerSpec]:
    """The listener whose mode each pool's backend is rendered in: the one it is the default
    pool of, else the first that redirects to it."""
    users = {listener.default_pool_id: listener for listener in spec.listeners}
    for listener in spec.listeners:
        for policy in _rendered_policies(listener):
            if policy.action == "REDIRECT_TO_POOL":
                users.setdefault(policy.redirect_pool_id, listener)
    return users


def _frontend(
    spec: LoadBalancerSpec, listener: ListenerSpec, users: dict[UUID | None, ListenerSpec]
) -> Iterator[str]:
    mode = _choice(listener.protocol, _MODES, "listener protocol")
    yield f"frontend {section('listener', listener.id)}"
    yield f"    mode {mode}"
    yield f"    bind {_endpoint(spec.vip_address, listener.protocol_port)}"
    if listener.connection_limit != -1:
        yield f"    maxconn {_integer(listener.connection_limit, 1, 2**31 - 1)}"
    yield f"    timeout client {_milliseconds(listener.timeout_client_data)}"
    if mode == "http":
        yield "    option idle-close-on-response"
        yield from _inserted_headers(listener.insert_headers)
    if listener.allowed_cidrs:
        networks = " ".join(_network(cidr) for cidr in listener.allowed_cidrs)
        yield f"    acl allowed-cidrs src {networks}"
        yield "    tcp-request connection reject unless allowed-cidrs"
    if listener.protocol == "HTTPS" and listener.timeout_tcp_inspect:
        yield f"    tcp-request inspect-delay {_milliseconds(listener.timeout_tcp_inspect)}"
        yield "    tcp-request content accept if { req_ssl_hello_type 1 }"
    if listener.l7policies and mode != "http":
        raise Unrenderable(f"L7 policies need an HTTP listener, not {listener.protocol}")
    requests, switches = _l7(spec, listener, users)
    yield from requests
    if listener.default_pool_id is None and mode == "http":
        # With REDIRECT_TO_POOL policies, the chosen policy can only be one of them here.
        yield "    http-request deny deny_status 503" + (" unless l7-chosen" if switches else "")
    yield from switches
    if listener.default_pool_id is not None:
        yield f"    default_backend {section('pool', listener.default_pool_id)}"
    elif mode != "http":
        yield "    tcp-request connection reject"
    if not (listener.admin_state_up and spec.admin_state_up):
        yield "    disabled"


def _rendered_policies(listener: ListenerSpec) -> list[L7PolicySpec]:
    """The policies of ``listener`` that can match, in the spec's (position) order."""
    return [
        policy
        for policy in listener.l7policies
        if policy.admin_state_up and any(rule.admin_state_up for rule in policy.rules)
    ]


def _l7(
    spec: LoadBalancerSpec, listener: ListenerSpec, users: dict[UUID | None, ListenerSpec]
) -> tuple[list[str], list[str]]:
    """The L7 policies of ``listener``: its ``http-request`` lines and its ``use_backend`` ones
    (a pool it switches to must run in HTTP mode as ``users`` renders it).

    Octavia's rule is that the first matching policy by position wins, but HAProxy runs every
    ``http-request`` rule (REJECT, the redirects) before any ``use_backend`` (REDIRECT_TO_POOL).
    So each policy, in order, first sets the variable :data:`_CHOSEN` to its id when all its
    enabled rules match and no policy was chosen yet (``l7-chosen``); then each policy's action
    runs only if it is the chosen one (``p-<id>``)::

        acl l7-chosen var(txn.l7_policy) -m found
        acl r-<rule> path -m beg -- '/api'
        http-request set-var(txn.l7_policy) str(<policy>) if !l7-chosen r-<rule> !r-<rule>
        acl p-<policy> var(txn.l7_policy) -m str <policy>
        ...
        http-request deny deny_status 403 if p-<policy>
        use_backend pool-<id> if p-<policy>

    A REDIRECT_TO_POOL policy at position 1 thus wins over a REJECT at position 2 for a
    request both match. ACLs are evaluated where they are used, so ``l7-chosen`` sees the
    variable as the rules before it left it. Disabled policies and rules are left out, and so
    is a policy without enabled rules (it matches nothing).
    """
    policies = _rendered_policies(listener)
    if not policies:
        return [], []
    pools = {pool.id: pool for pool in spec.pools}
    conditions = [f"    acl l7-chosen var({_CHOSEN}) -m found"]
    requests: list[str] = []
    switches: list[str] = []
    seen: set[UUID] = set()
    for policy in policies:
        problem = l7_policy_problem(
            policy.action,
            redirect_pool_id=policy.redirect_pool_id,
            redirect_url=policy.redirect_url,
            redirect_prefix=policy.redirect_prefix,
            redirect_http_code=policy.redirect_http_code,
        )
        if problem is not None:
            raise Unrenderable(f"L7 policy {policy.id}: {problem}")
        policy_hex = _unique(policy.id, seen)
        chosen = f"p-{policy_hex}"
        rules = [rule for rule in policy.rules if rule.admin_state_up]
        if len(rules) > MAX_L7_RULES_PER_POLICY:
            raise Unrenderable(
                f"L7 policy {policy.id} has more than {MAX_L7_RULES_PER_POLICY} enabled rules"
            )
        matches = []
        for rule in rules:
            name, acl = _rule(rule, seen)
            conditions.append(acl)
            matches.append(f"!{name}" if rule.invert else name)
        conditions.append(
            f"    http-request set-var({_CHOSEN}) str({policy_hex}) if !l7-chosen "
            + " ".join(matches)
        )
        conditions.append(f"    acl {chosen} var({_CHOSEN}) -m str {policy_hex}")
        code = policy.redirect_http_code or DEFAULT_REDIRECT_HTTP_CODE
        if policy.action == "REJECT":
            requests.append(f"    http-request deny deny_status 403 if {chosen}")
        elif policy.action == "REDIRECT_TO_URL":
            requests.append(
                f"    http-request redirect location {policy.redirect_url} code {code} if {chosen}"
            )
        elif policy.action == "REDIRECT_PREFIX":
            requests.append(
                f"    http-request redirect prefix {policy.redirect_prefix} code {code} if {chosen}"
            )
        else:
            pool = pools.get(UUID(str(policy.redirect_pool_id)))
            if pool is None:
                raise Unrenderable(
                    f"L7 policy {policy.id} redirects to pool {policy.redirect_pool_id},"
                    " which is not one of the load balancer's"
                )
            if _pool_mode(pool, users.get(pool.id)) != "http":
                raise Unrenderable(
                    f"L7 policy {policy.id} redirects to the {pool.protocol} pool {pool.id}"
                    " of an HTTP listener"
                )
            switches.append(f"    use_backend {section('pool', pool.id)} if {chosen}")
    return conditions + requests, switches


def _rule(rule: L7RuleSpec, seen: set[UUID]) -> tuple[str, str]:
    """The name of the ACL of ``rule`` and its declaration.

    HOST_NAME compares the Host header without its port, case-insensitively; PATH the path
    (no query); FILE_TYPE the path's end: ``.jpg`` for EQUAL_TO ``jpg``, and
    :func:`~shared.allow_lists.file_type_regex` for REGEX; HEADER ``req.hdr(<key>)`` (each
    comma-separated value, as Octavia); COOKIE ``req.cook(<key>)``. The value stands between
    single quotes after ``--``, so that HAProxy reads it as it is and never as a flag.
    """
    problem = l7_rule_problem(rule.type, rule.compare_type, rule.key, rule.value)
    if problem is not None:
        raise Unrenderable(f"L7 rule {rule.id}: {problem}")
    name = f"r-{_unique(rule.id, seen)}"
    match = _MATCHES[rule.compare_type]
    value = rule.value
    if rule.type == "HOST_NAME":
        fetch = "req.hdr(host),field(1,:) -i"
    elif rule.type == "PATH":
        fetch = "path"
    elif rule.type == "FILE_TYPE":
        fetch = "path"
        if rule.compare_type == "REGEX":
            value = file_type_regex(value)
        else:
            match, value = "end", f".{value}"
    elif rule.type == "HEADER":
        fetch = f"req.hdr({rule.key})"
    else:
        fetch = f"req.cook({rule.key})"
    return name, f"    acl {name} {fetch} -m {match} -- {_single_quoted(value)}"


def _single_quoted(value: str) -> str:
    """``value`` as one word that HAProxy reads as it is (nothing is interpreted there)."""
    if not _QUOTABLE.fullmatch(value):
        raise Unrenderable(f"{value!r} cannot stand between single quotes")
    return f"'{value}'"


def _unique(object_id: UUID, seen: set[UUID]) -> str:
    """The hex of an id that names an ACL; an id seen twice would merge two ACLs."""
    object_id = UUID(str(object_id))
    if object_id in seen:
        raise Unrenderable(f"{object_id} is the id of two L7 policies or rules")
    seen.add(object_id)
    return object_id.hex


def _inserted_headers(headers: dict[str, str]) -> Iterator[str]:
    for name in sorted(headers):
        value = headers[name]
        if value not in _TRUE | {"false", "False"}:
            raise Unrenderable(f"insert_headers[{name!r}] must be true or false")
        if value not in _TRUE:
            continue
        if name == "X-Forwarded-For":
            yield "    option forwardfor"
        elif name == "X-Forwarded-Port":
            yield "    http-request set-header X-Forwarded-Port %[dst_port]"
        elif name == "X-Forwarded-Proto":
            yield "    http-request set-header X-Forwarded-Proto http"
        elif name in _CLIENT_ADDRESS_HEADERS:
            yield f"    http-request set-header {name} %[src]"
        else:
            raise Unrenderable(
                "insert_headers may only name X-Forwarded-For, -Port, -Proto, -IP, "
                "X-Client-IP and X-Real-IP"
            )


def _pool_mode(pool: PoolSpec, listener: ListenerSpec | None) -> str:
    """A PROXY or PROXYV2 pool runs in its listener's mode (TCP without one)."""
    if pool.protocol in _PROXY_PROTOCOLS:
        if listener is None:
            return "tcp"
        return _choice(listener.protocol, _MODES, "listener protocol")
    return _choice(pool.protocol, _MODES, "pool protocol")


def _backend(pool: PoolSpec, listener: ListenerSpec | None) -> Iterator[str]:
    mode = _pool_mode(pool, listener)
    yield f"backend {section('pool', pool.id)}"
    yield f"    mode {mode}"
    balance = _choice(pool.lb_algorithm, _ALGORITHMS, "lb_algorithm")
    if pool.lb_algorithm == "SOURCE_IP_PORT":
        yield f"    tcp-request content set-var({_SOURCE_PORT}) src_port"
    yield f"    balance {balance}"
    if listener is not None:
        yield f"    timeout connect {_milliseconds(listener.timeout_member_connect)}"
        yield f"    timeout server {_milliseconds(listener.timeout_member_data)}"
    cookie = False
    if pool.session_persistence is not None:
        persistence = list(_persistence(pool.session_persistence, mode))
        cookie = pool.session_persistence.type == "HTTP_COOKIE"
        yield from persistence
    monitor = pool.healthmonitor
    if monitor is not None and not monitor.admin_state_up:
        monitor = None
    if monitor is not None:
        yield from _monitor(monitor)
    proxy = _PROXY_PROTOCOLS.get(pool.protocol)
    for member in pool.members:
        yield "    " + _server(member, monitor, cookie=cookie, proxy=proxy)
    if not pool.admin_state_up:
        yield "    disabled"


def _persistence(persistence: SessionPersistenceSpec, mode: str) -> Iterator[str]:
    if persistence.type == "SOURCE_IP":
        yield f"    stick-table type ip {_STICK_TABLE}"
        yield "    stick on src"
        return
    if mode != "http":
        raise Unrenderable(f"{persistence.type} session persistence needs an HTTP pool")
    if persistence.type == "HTTP_COOKIE":
        yield "    cookie SRV insert indirect nocache"
    elif persistence.type == "APP_COOKIE":
        name = _matching(persistence.cookie_name or "", COOKIE_NAME, "cookie_name")
        yield f"    stick-table type string len 64 {_STICK_TABLE}"
        yield f"    stick store-response res.cook({name})"
        yield f"    stick match req.cook({name})"
    else:
        raise Unrenderable(f"unknown session persistence {persistence.type!r}")


def _monitor(monitor: HealthMonitorSpec) -> Iterator[str]:
    """HAProxy has no ICMP check: a PING monitor is a connect check, as a TCP one."""
    kind = _choice(monitor.type, {t: t for t in _MONITOR_TYPES}, "health monitor type")
    if kind in ("HTTP", "HTTPS"):
        method = _choice(monitor.http_method or "GET", {m: m for m in _HTTP_METHODS}, "http_method")
        path = _matching(monitor.url_path or "/", URL_PATH, "url_path")
        codes = _matching(monitor.expected_codes or "200", EXPECTED_CODES, "expected_codes")
        yield "    option httpchk"
        yield f"    http-check send meth {method} uri {path}"
        yield f"    http-check expect status {codes}"
    yield f"    timeout check {_integer(monitor.timeout, 1, 86_400)}s"
    yield (
        f"    default-server inter {_integer(monitor.delay, 1, 86_400)}s"
        f" rise {_integer(monitor.max_retries, 1, 10)}"
        f" fall {_integer(monitor.max_retries_down, 1, 10)}"
    )


def _server(
    member: MemberSpec, monitor: HealthMonitorSpec | None, *, cookie: bool, proxy: str | None
) -> str:
    words = [
        "server",
        section("member", member.id),
        _endpoint(member.address, member.protocol_port),
        f"weight {_integer(member.weight, 0, 256)}",
    ]
    if proxy is not None:
        words.append(proxy)
    if member.backup:
        words.append("backup")
    if monitor is not None:
        words.append("check")
        if monitor.type == "HTTPS":
            words.append("check-ssl verify none")
        if member.monitor_address is not None:
            words.append(f"addr {_address(member.monitor_address)}")
        if member.monitor_port is not None:
            words.append(f"port {_integer(member.monitor_port, 1, 65535)}")
    if cookie:
        words.append(f"cookie {UUID(str(member.id)).hex}")
    if not member.admin_state_up:
        words.append("disabled")
    return " ".join(words)


def _choice(value: str, allowed: dict[str, str], what: str) -> str:
    if value not in allowed:
        raise Unrenderable(f"{what} {value!r} is not one of {', '.join(sorted(allowed))}")
    return allowed[value]


def _matching(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.fullmatch(value):
        raise Unrenderable(f"{what} {value!r} is not allowed in a configuration")
    return value


def _integer(value: object, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise Unrenderable(f"{value!r} is not an integer from {low} to {high}")
    return value


def _milliseconds(value: object) -> str:
    return f"{_integer(value, 0, 2_073_600_000)}ms"


def _address(value: str) -> str:
    """The re-serialised address (IPv6 in brackets); no scope id, nothing else."""
    try:
        address = ip_address(value)
    except ValueError:
        raise Unrenderable(f"{value!r} is not an IP address") from None
    if isinstance(address, IPv6Address) and address.scope_id:
        raise Unrenderable(f"{value!r} has a scope id")
    return f"[{address}]" if isinstance(address, IPv6Address) else str(address)


def _endpoint(address: str, port: object) -> str:
    return f"{_address(address)}:{_integer(port, 1, 65535)}"


def _network(value: str) -> str:
    try:
        return str(ip_network(value, strict=True))
    except ValueError:
        raise Unrenderable(f"{value!r} is not a network in CIDR notation") from None
