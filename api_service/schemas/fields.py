"""Field types with allow-lists for every user string that may reach a device."""

import re
import unicodedata
from ipaddress import IPv4Address, IPv6Address, ip_address
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
