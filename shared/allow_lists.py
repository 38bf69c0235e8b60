"""The allow-lists of the strings that may reach a device configuration.

The API validates every such value with them, and the HAProxy renderer again
before rendering (``fullmatch``: a value matches whole or is refused). Each is
anchored with ``\\A…\\Z`` (``$`` would also match before a final newline).
"""

import re

URL_PATH = re.compile(r"\A/(?:[A-Za-z0-9\-._~!&()*+,;=:@/?]|%[0-9A-Fa-f]{2}){0,254}\Z")
"""Path characters of RFC 3986, with ``%`` only as percent-encoding (never a log-format ``%[``)."""
EXPECTED_CODES = re.compile(r"\A[1-5][0-9]{2}(-[1-5][0-9]{2})?(,[1-5][0-9]{2}(-[1-5][0-9]{2})?)*\Z")
"""A code, a list (200,202) or a range (200-204) of HTTP codes; ASCII digits only (``\\d``
would take the digits of other scripts too)."""
COOKIE_NAME = re.compile(r"\A[A-Za-z0-9!&*+\-.^_`|~]{1,255}\Z")
"""RFC 6265 token characters less ``$`` and ``%``, which HAProxy may expand."""
