"""Field types with allow-lists for every user string that may reach a device."""

import re
import unicodedata
from ipaddress import IPv4Address, IPv6Address, ip_address, ip_network
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

StrictBool = Annotated[bool, Strict()]
StrictInt = Annotated[int, Strict()]


def _printable(value: str) -> str:
    """No control or format characters (newlines, NUL, bidi overrides) anywhere."""
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise ValueError(f"must not contain control characters (found {char!r})")
    return value


Text255 = Annotated[str, Strict(), Field(max_length=255), AfterValidator(_printable)]
Tags = Annotated[list[Text255], Field(max_length=64)]

_IDENTIFIER = re.compile(r"\A[a-z][a-z0-9_]{0,63}\Z")
_PROJECT = re.compile(r"\A[A-Za-z0-9_.-]{1,255}\Z")


def _identifier(value: str) -> str:
    if not _IDENTIFIER.fullmatch(value):
        raise ValueError(
            "must be lower-case letters, digits and _ (at most 64), starting with a letter"
        )
    return value


def _project(value: str) -> str:
    if not _PROJECT.fullmatch(value):
        raise ValueError("must be 1-255 characters of A-Z a-z 0-9 _ . -")
    return value


def _ip(value: str) -> str:
    try:
        return str(ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


DriverName = Annotated[str, Strict(), AfterValidator(_identifier)]
ProjectId = Annotated[str, Strict(), AfterValidator(_project)]
IpAddress = Annotated[str, Strict(), AfterValidator(_ip)]


class RequestBody(BaseModel):
    """Request bodies reject unknown fields."""

    model_config = ConfigDict(extra="forbid")


def parse_ip(value: str) -> IPv4Address | IPv6Address:
    return ip_address(value)


# Values that reach a device configuration: allow-lists from ../shared/HAPROXY.md.
_URL_PATH = re.compile(r"\A/[A-Za-z0-9\-._~!&()*+,;=:@%/?]{0,254}\Z")
_EXPECTED_CODES = re.compile(r"\A[1-5]\d\d(-[1-5]\d\d)?(,[1-5]\d\d(-[1-5]\d\d)?)*\Z")
_COOKIE_NAME = re.compile(r"\A[A-Za-z0-9!$%&*+\-.^_`|~]{1,255}\Z")


def _url_path(value: str) -> str:
    if not _URL_PATH.fullmatch(value):
        raise ValueError(
            "must start with / and hold only URL characters (no spaces, quotes, # or controls)"
        )
    return value


def _expected_codes(value: str) -> str:
    if not _EXPECTED_CODES.fullmatch(value):
        raise ValueError("must be a code, a list (200,202) or a range (200-204) of HTTP codes")
    return value


def _cookie_name(value: str) -> str:
    if not _COOKIE_NAME.fullmatch(value):
        raise ValueError("must be a cookie token (letters, digits and !$%&*+-.^_`|~)")
    return value


def _cidr_list(values: list[str]) -> list[str]:
    out = []
    for value in values:
        try:
            out.append(str(ip_network(value, strict=True)))
        except ValueError:
            raise ValueError(f"{value!r} is not a network in CIDR notation") from None
    return out


UrlPath = Annotated[str, Strict(), AfterValidator(_url_path)]
ExpectedCodes = Annotated[str, Strict(), AfterValidator(_expected_codes)]
CookieName = Annotated[str, Strict(), AfterValidator(_cookie_name)]
Port = Annotated[StrictInt, Field(ge=1, le=65535)]
CidrList = Annotated[
    list[Annotated[str, Strict()]], Field(max_length=100), AfterValidator(_cidr_list)
]
