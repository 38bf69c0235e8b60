"""The allow-lists of the strings that may reach a device configuration.

The API validates every such value with them, and the HAProxy renderer again
before rendering (``fullmatch``: a value matches whole or is refused). Each is
anchored with ``\\A…\\Z`` (``$`` would also match before a final newline).
"""

import re
import warnings
from ipaddress import IPv6Address

URL_PATH = re.compile(r"\A/(?:[A-Za-z0-9\-._~!&()*+,;=:@/?]|%[0-9A-Fa-f]{2}){0,254}\Z")
"""Path characters of RFC 3986, with ``%`` only as percent-encoding (never a log-format ``%[``)."""
EXPECTED_CODES = re.compile(r"\A[1-5][0-9]{2}(-[1-5][0-9]{2})?(,[1-5][0-9]{2}(-[1-5][0-9]{2})?)*\Z")
"""A code, a list (200,202) or a range (200-204) of HTTP codes; ASCII digits only (``\\d``
would take the digits of other scripts too)."""
COOKIE_NAME = re.compile(r"\A[A-Za-z0-9!&*+\-.^_`|~]{1,255}\Z")
"""RFC 6265 token characters less ``$`` and ``%``, which HAProxy may expand."""

# L7 policies and rules (Octavia's model), checked by l7_rule_problem and l7_policy_problem.
# The renderer puts a rule's value in the configuration as one word between single quotes,
# where HAProxy interprets nothing (no backslash escape, no ${VARIABLE}, no # comment), after
# "--" (so that a value such as -f is not read as a flag: -f loads patterns from a file). No
# value may hold a quote, a control character or anything but ASCII. A REGEX value is matched
# by HAProxy's PCRE2, unanchored (use ^ and $). Redirect URLs and prefixes are rendered bare and
# HAProxy reads them as log-format strings: they hold no %, no space and nothing HAProxy's
# configuration parser interprets.

L7_RULE_TYPES = frozenset({"HOST_NAME", "PATH", "FILE_TYPE", "HEADER", "COOKIE"})
L7_COMPARE_TYPES = frozenset({"REGEX", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO"})
L7_ACTIONS = frozenset({"REJECT", "REDIRECT_TO_URL", "REDIRECT_PREFIX", "REDIRECT_TO_POOL"})
REDIRECT_HTTP_CODES = frozenset({301, 302, 303, 307, 308})
DEFAULT_REDIRECT_HTTP_CODE = 302
"""The code of a redirect whose ``redirect_http_code`` is None."""
MAX_L7_RULES_PER_POLICY = 50
"""Enabled rules of one policy: its condition is one configuration line, of at most 64 words."""
MAX_L7_VALUE_LENGTH = 255

HEADER_NAME = re.compile(r"\A[A-Za-z0-9!&*+\-.^_`|~]{1,255}\Z")
"""RFC 9110 token characters less ``#``, ``$``, ``%`` and ``'`` (the ``key`` of a HEADER rule)."""
HOST_NAME_VALUE = re.compile(r"\A[A-Za-z0-9._\-]{1,255}\Z")
"""A host name or part of one (``.example.com`` ENDS_WITH), matched without the port and
case-insensitively. No ``*``: no compare type is a glob; use ENDS_WITH ``.example.com``."""
PATH_VALUE = re.compile(r"\A(?:[A-Za-z0-9\-._~!&()*+,;=:@/]|%[0-9A-Fa-f]{2}){1,255}\Z")
"""URL path characters (as :data:`URL_PATH`), or part of a path, without ``?``: the path that
is matched ends before the query. EQUAL_TO and STARTS_WITH values also start with ``/``."""
FILE_TYPE_VALUE = re.compile(r"\A[A-Za-z0-9]{1,16}\Z")
"""A file extension without its dot (``jpg``): the path ends with ``.jpg`` (case matters)."""
HEADER_VALUE = re.compile(r"\A[A-Za-z0-9!&()*+\-./:;<=>?@\[\]^_`{|}~]{1,255}\Z")
"""What a HEADER rule compares with: visible ASCII less ``"``, ``#``, ``$``, ``%``, ``'``,
``\\`` and ``,`` (HAProxy compares each comma-separated value of the header); no space."""
COOKIE_VALUE = re.compile(r"\A[A-Za-z0-9!&()*+\-./:<=>?@\[\]^_`{|}~]{1,255}\Z")
"""What a COOKIE rule compares with: RFC 6265 cookie octets less ``#``, ``$``, ``%`` and ``'``
(no space, quote, comma, semicolon or backslash)."""
REGEX_VALUE = re.compile(r"\A[ !#-&(-~]{1,255}\Z")
"""A REGEX rule's value: printable ASCII (space included) but the quotes (``\\x22`` and
``\\x27`` match them); it must also compile, with Python's ``re`` and in the PCRE2 dialect of
HAProxy (see :func:`l7_rule_problem`)."""

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?"
_ORIGIN = (
    rf"https?://(?P<host>{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:.]{{2,45}}\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)
REDIRECT_PREFIX = re.compile(rf"\A{_ORIGIN}\Z")
"""``http(s)://host[:port]``, no path (nor a final ``/``): the request's path and query follow.
The host is a DNS name or an IP address (IPv6 in brackets); no user information."""
REDIRECT_URL = re.compile(rf"\A{_ORIGIN}(?P<rest>/[A-Za-z0-9\-._~!&()*+,;=:@/?]*)?\Z")
"""An absolute http(s) URL: an origin as :data:`REDIRECT_PREFIX`, then optionally a path and a
query of RFC 3986 characters less ``'``, ``$`` and ``%`` (no percent-encoding: HAProxy reads
the URL as a log-format string); no fragment, no space, no quote, no backslash."""

_KEYED = frozenset({"HEADER", "COOKIE"})
_PARTIAL = frozenset({"ENDS_WITH", "CONTAINS"})
_PY_ONLY_ESCAPE = re.compile(r"\\[uUN1-9]")
_ESCAPED = re.compile(r"\\.", re.DOTALL)
_PY_ONLY_SYNTAX = re.compile(
    r"\(\?\("  # a conditional group: HAProxy's groups do not capture
    r"|\(\?[aiLmsux\-]*[auL][aiLmsux\-]*[:)]"  # the flags ASCII, UNICODE and LOCALE
    r"|\{,"  # {,n}: a repeat for Python, literal text for PCRE2
    r"|\[([:.=])[^\]]*?\1\]"  # [:alpha:] [.a.] [=a=]: POSIX classes for PCRE2, sets for Python
)


def _regex_problem(value: str) -> str | None:
    if not REGEX_VALUE.fullmatch(value):
        return (
            f"a regex must be 1 to {MAX_L7_VALUE_LENGTH} printable ASCII characters"
            " without quotes (write \\x22 and \\x27)"
        )
    escape = next((m for m in _ESCAPED.finditer(value) if _PY_ONLY_ESCAPE.match(m.group())), None)
    if escape is not None:
        return (
            f"{escape.group()!r} is not supported: no \\u, \\U, \\N escapes and no numbered"
            " back-references (HAProxy's groups do not capture; use (?P<name>...) and (?P=name))"
        )
    bare = _ESCAPED.sub("__", value)
    if _PY_ONLY_SYNTAX.search(bare):
        return (
            "conditional groups, the flags a, u and L, {,n} repeats and POSIX classes"
            " ([:alpha:]) are not supported: Python and HAProxy read them differently"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            re.compile(value)
    except re.error as exc:
        return f"the regex does not compile: {exc}"
    return None


def file_type_regex(value: str) -> str:
    """What a FILE_TYPE REGEX rule matches the path with: a dot, then ``value`` to its end."""
    return rf"\.(?:{value})$"


def l7_rule_problem(type: str, compare_type: str, key: str | None, value: str) -> str | None:
    """Why an L7 rule cannot be accepted, or None.

    ``key`` is required for HEADER (:data:`HEADER_NAME`) and COOKIE (:data:`COOKIE_NAME`)
    rules, and must be None for the others. FILE_TYPE rules compare with EQUAL_TO or REGEX
    only. A REGEX ``value`` is checked by :data:`REGEX_VALUE` and compiled (a FILE_TYPE one as
    :func:`file_type_regex`); other values are checked by the allow-list of the rule's type:
    :data:`HOST_NAME_VALUE`, :data:`PATH_VALUE`, :data:`FILE_TYPE_VALUE`, :data:`HEADER_VALUE`,
    :data:`COOKIE_VALUE`.
    """
    if type not in L7_RULE_TYPES:
        return f"type must be one of {', '.join(sorted(L7_RULE_TYPES))}"
    if compare_type not in L7_COMPARE_TYPES:
        return f"compare_type must be one of {', '.join(sorted(L7_COMPARE_TYPES))}"
    if type == "FILE_TYPE" and compare_type not in ("EQUAL_TO", "REGEX"):
        return "a FILE_TYPE rule compares with EQUAL_TO or REGEX only"
    if type in _KEYED:
        names = HEADER_NAME if type == "HEADER" else COOKIE_NAME
        if not isinstance(key, str) or not names.fullmatch(key):
            return (
                f"a {type} rule needs a key: the {type.lower()} name, 1 to 255 letters, digits"
                " and !&*+-.^_`|~"
            )
    elif key is not None:
        return f"a {type} rule has no key"
    if not isinstance(value, str):
        return "value must be a string"
    if compare_type == "REGEX":
        problem = _regex_problem(value)
        if problem is None and type == "FILE_TYPE" and _regex_problem(file_type_regex(value)):
            problem = (
                f"a FILE_TYPE regex is matched as {file_type_regex('...')}, where this one does"
                " not compile (scope its flags: (?i:jpg), not (?i)jpg)"
            )
        return problem
    if type == "HOST_NAME" and not HOST_NAME_VALUE.fullmatch(value):
        return "a HOST_NAME value holds only letters, digits, '.', '-' and '_' (1 to 255)"
    if type == "PATH":
        if len(value) > MAX_L7_VALUE_LENGTH or not PATH_VALUE.fullmatch(value):
            return (
                "a PATH value holds only URL path characters, % only as percent-encoding,"
                f" no ? (the query is not part of the path), at most {MAX_L7_VALUE_LENGTH}"
            )
        if compare_type not in _PARTIAL and not value.startswith("/"):
            return f"a PATH value compared with {compare_type} starts with /"
    if type == "FILE_TYPE" and not FILE_TYPE_VALUE.fullmatch(value):
        return "a FILE_TYPE value is an extension without its dot: 1 to 16 letters or digits"
    if type == "HEADER" and not HEADER_VALUE.fullmatch(value):
        return (
            "a HEADER value holds 1 to 255 visible ASCII characters but quotes, #, $, %, \\"
            " and the comma (each comma-separated value of the header is compared)"
        )
    if type == "COOKIE" and not COOKIE_VALUE.fullmatch(value):
        return (
            "a COOKIE value holds 1 to 255 visible ASCII characters but quotes, #, $, %, \\,"
            " the comma and the semicolon"
        )
    return None


def redirect_url_problem(url: str) -> str | None:
    """Why ``url`` cannot be a REDIRECT_TO_URL policy's ``redirect_url``, or None."""
    form = (
        "an absolute http(s) URL: a DNS name or an IP address, an optional port, then a path"
        " and a query of URL characters, with no %, quote, space, backslash or #"
    )
    return _origin_problem(url, REDIRECT_URL, "redirect_url", form)


def redirect_prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot be a REDIRECT_PREFIX policy's ``redirect_prefix``, or None."""
    form = "http(s)://host[:port], a DNS name or an IP address, with no path (nor a final /)"
    return _origin_problem(prefix, REDIRECT_PREFIX, "redirect_prefix", form)


def _origin_problem(value: str, pattern: re.Pattern[str], what: str, form: str) -> str | None:
    found = pattern.fullmatch(value) if isinstance(value, str) else None
    if found is None or len(value) > MAX_L7_VALUE_LENGTH:
        return f"{what} must be {form}, at most {MAX_L7_VALUE_LENGTH} characters"
    host, port = found.group("host"), found.group("port")
    if host.startswith("["):
        try:
            IPv6Address(host[1:-1])
        except ValueError:
            return f"{what} has an invalid IPv6 address"
    elif len(host) > 253:
        return f"{what} has a host name longer than 253 characters"
    if port is not None and not 1 <= int(port) <= 65535:
        return f"{what} has a port outside 1-65535"
    return None


def l7_policy_problem(
    action: str,
    *,
    redirect_pool_id: object | None = None,
    redirect_url: str | None = None,
    redirect_prefix: str | None = None,
    redirect_http_code: int | None = None,
) -> str | None:
    """Why an L7 policy cannot be accepted, or None.

    REDIRECT_TO_POOL needs ``redirect_pool_id`` (the renderer checks that it is a pool of the
    load balancer), REDIRECT_TO_URL ``redirect_url`` and REDIRECT_PREFIX ``redirect_prefix``.
    Each of the three fields that is given is checked, whatever the action;
    ``redirect_http_code`` is one of :data:`REDIRECT_HTTP_CODES` or None
    (:data:`DEFAULT_REDIRECT_HTTP_CODE`).
    """
    if action not in L7_ACTIONS:
        return f"action must be one of {', '.join(sorted(L7_ACTIONS))}"
    needed = {
        "REDIRECT_TO_POOL": ("redirect_pool_id", redirect_pool_id),
        "REDIRECT_TO_URL": ("redirect_url", redirect_url),
        "REDIRECT_PREFIX": ("redirect_prefix", redirect_prefix),
    }.get(action)
    if needed is not None and needed[1] is None:
        return f"a {action} policy needs a {needed[0]}"
    if redirect_url is not None and (problem := redirect_url_problem(redirect_url)):
        return problem
    if redirect_prefix is not None and (problem := redirect_prefix_problem(redirect_prefix)):
        return problem
    if redirect_http_code is not None and (
        type(redirect_http_code) is not int or redirect_http_code not in REDIRECT_HTTP_CODES
    ):
        codes = ", ".join(map(str, sorted(REDIRECT_HTTP_CODES)))
        return f"redirect_http_code must be one of {codes}"
    return None
