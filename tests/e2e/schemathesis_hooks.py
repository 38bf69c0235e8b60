"""Schemathesis hooks of ``test_schemathesis.py``, loaded by the ``schemathesis`` process:
unique Idempotency-Keys, one credential a request, and values of the API's custom string
format ``cidr``."""

import re
import uuid
from ipaddress import IPv4Network, IPv6Network
from typing import Any

import schemathesis
from hypothesis import strategies as st

_KEY = re.compile(r"\A[\x21-\x7e]{1,255}\Z")


@schemathesis.hook
def before_call(
    context: schemathesis.HookContext, case: schemathesis.Case[Any], kwargs: Any
) -> None:
    """Make every well-formed Idempotency-Key unique to its request; send one credential.

    Generated keys repeat (Hypothesis favours short strings such as ``0``), and a key sent
    again with another body is rightly refused with 422: most creates would never run.
    A malformed key stays as it was generated, for the negative cases.
    """
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if isinstance(key, str) and _KEY.fullmatch(key):
        case.headers["Idempotency-Key"] = f"{key[:200]}~{uuid.uuid4().hex}"
    # Either security scheme will do, so Schemathesis may generate an Authorization beside
    # the run's X-Auth-Token; a request with two credentials is rightly refused with 400.
    if case.headers and "X-Auth-Token" in case.headers:
        case.headers.pop("Authorization", None)


@st.composite
def _network(draw: st.DrawFn) -> str:
    """A network in CIDR notation with its host bits zero, as the ``cidr`` format says."""
    kind = draw(st.sampled_from([IPv4Network, IPv6Network]))
    bits = 32 if kind is IPv4Network else 128
    prefix = draw(st.integers(min_value=0, max_value=bits))
    address = draw(st.integers(min_value=0, max_value=2**bits - 1))
    return str(kind((address, prefix), strict=False))


schemathesis.openapi.format("cidr", _network())
