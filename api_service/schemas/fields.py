"""Field types with allow-lists for every user string that may reach a device."""

import re
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import ip_address, ip_network
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    PlainSerializer,
    Strict,
    TypeAdapter,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from api_service.db.listing import TIMESTAMP, TIMESTAMP_FORMAT
from shared.allow_lists import COOKIE_NAME, EXPECTED_CODES, URL_PATH

StrictBool = Annotated[bool, Strict()]


def _boolean(value: object) -> object:
    """A ``Literal[True]`` or ``Literal[False]`` alone takes ``1`` or ``0`` too (they compare
    equal): JSON's ``true`` and ``false`` only."""
    if not isinstance(value, bool):
        raise ValueError("must be a boolean")
    return value


OnlyTrue = Annotated[Literal[True], BeforeValidator(_boolean)]
OnlyFalse = Annotated[Literal[False], BeforeValidator(_boolean)]

INT32_MAX = 2**31 - 1
"""The largest value an integer column holds: every unbounded count is capped there."""


def _integral(value: object) -> object:
    """JSON does not tell ``8`` from ``8.0`` (nor does JSON Schema's ``integer``): both are 8.

    Strings, booleans and fractions stay what they are, and strict validation refuses them.
    """
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


INTEGRAL = BeforeValidator(_integral)
"""Put last in an integer's ``Annotated``, after its ``Strict()`` and ``Field`` bounds (earlier,
the bounds are lost from the JSON schema)."""
StrictInt = Annotated[int, Strict(), INTEGRAL]


def pattern_of(regex: re.Pattern[str]) -> str:
    r"""The JSON Schema ``pattern`` of a ``\A…\Z`` regex.

    ``$`` ends the text in the regex dialects of JSON Schema validators, as ``\Z`` does in
    Python's (where ``$`` would also match before a final newline).
    """
    source = regex.pattern
    assert source.startswith("\\A") and source.endswith("\\Z"), source
    return "^" + source[2:-2] + "$"


def documented(regex: re.Pattern[str]) -> Any:
    """``Field`` metadata that documents the regex a validator checks, as the schema's pattern."""
    return Field(json_schema_extra={"pattern": pattern_of(regex)})


# Control, format and separator characters (Unicode Cc, Cf, Zl, Zp: newlines, NUL, C1
# controls, bidi overrides, zero-width characters), written out so that the JSON schema can
# say it; lone surrogates (Cs) are refused separately (a JSON Schema regex cannot name them).
_CONTROLS = (
    r"\u0000-\u001F\u007F-\u009F\u00AD\u0600-\u0605\u061C\u06DD\u070F\u0890-\u0891"
    r"\u08E2\u180E\u200B-\u200F\u2028-\u202E\u2060-\u2064\u2066-\u206F\uFEFF"
    r"\uFFF9-\uFFFB\U000110BD\U000110CD\U00013430-\U0001343F\U0001BCA0-\U0001BCA3"
    r"\U0001D173-\U0001D17A\U000E0001\U000E0020-\U000E007F"
)
_PRINTABLE = re.compile(rf"\A[^{_CONTROLS}]*\Z")
_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _printable(value: str) -> str:
    """No control or format characters (newlines, NUL, bidi overrides) anywhere."""
    if not _PRINTABLE.fullmatch(value) or _SURROGATE.search(value):
        found = next(c for c in value if not _PRINTABLE.fullmatch(c) or _SURROGATE.match(c))
        raise ValueError(f"must not contain control characters (found {found!r})")
    return value


Text255 = Annotated[
    str, Strict(), Field(max_length=255), documented(_PRINTABLE), AfterValidator(_printable)
]
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
        address = ip_address(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None
    if getattr(address, "scope_id", None):
        raise ValueError(f"{value!r} has a scope (zone) id, which an address here cannot have")
    return str(address)


IP_FORMATS: dict[str, Any] = {
    "anyOf": [{"type": "string", "format": "ipv4"}, {"type": "string", "format": "ipv6"}]
}
"""The JSON schema of an IPv4 or IPv6 address: a string either way (each branch says so, so
that client generators type it as a string rather than as anything)."""

DriverName = Annotated[str, Strict(), documented(_IDENTIFIER), AfterValidator(_identifier)]
ProjectId = Annotated[str, Strict(), documented(_PROJECT), AfterValidator(_project)]
IpAddress = Annotated[str, Strict(), Field(json_schema_extra=IP_FORMATS), AfterValidator(_ip)]
IpAddressOut = Annotated[str, Field(json_schema_extra=IP_FORMATS)]
"""An address in an answer (as the service normalised it)."""


def octavia_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


TIMESTAMP_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": pattern_of(TIMESTAMP),
    "description": "UTC, to the second, without an offset (as Octavia answers).",
}
Timestamp = Annotated[
    datetime,
    PlainSerializer(octavia_timestamp, return_type=str),
    WithJsonSchema(TIMESTAMP_SCHEMA),
]
"""``created_at`` and ``updated_at`` in an answer, as Octavia writes them (not RFC 3339's
``date-time``, which needs an offset); the service's own moments (``started_at``...) keep
their fraction and offset."""


class DocumentedAs:
    """Field metadata: the JSON schema of ``shown`` (a named component) documents the field,
    whose own type still validates it.

    For a type whose JSON schema generators cannot use (a ``dict`` keyed by an enum) or
    would name after each field using it (a ``Literal``): a ``TypedDict`` or an ``IntEnum``
    says the same with a name of its own.
    """

    def __init__(self, shown: Any) -> None:
        core = TypeAdapter(shown).core_schema
        if "ref" in core:
            # Referred to, not inlined: the schema of an enum is its component then.
            reference = core_schema.definition_reference_schema(core["ref"])
            core = core_schema.definitions_schema(reference, [core])
        self._core = core

    def __get_pydantic_json_schema__(
        self, core: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return handler(self._core)


def not_null(schema: dict[str, Any]) -> None:
    """A ``json_schema_extra`` for a parameter that is optional (absent: ``None``) but that
    a client never sends as null: the schema of its value only."""
    branches = [b for b in schema.pop("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches


class RequestBody(BaseModel):
    """Request bodies reject unknown fields."""

    model_config = ConfigDict(extra="forbid")


def required_in_schema(*names: str) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` for fields that the model leaves optional (a subclass used
    elsewhere has no use for them) but that this body requires, not null: every one of
    ``names``. The service refuses the same bodies.

    (For "one of two fields", see ``needed_unless``.)"""

    def extra(schema: dict[str, Any]) -> None:
        properties: dict[str, Any] = schema["properties"]
        for name in names:
            declared = properties[name]
            branches = [b for b in declared.get("anyOf", [declared]) if b.get("type") != "null"]
            assert len(branches) == 1, (name, declared)
            kept = {k: v for k, v in declared.items() if k in ("title", "description")}
            properties[name] = {**branches[0], **kept}
        schema["required"] = [*schema.get("required", []), *names]

    return extra


def never_null(*names: str) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` for fields of an update body that have no default to go back
    to: they may be left out (and stay), not sent as null (the service refuses that, 400)."""

    def extra(schema: dict[str, Any]) -> None:
        properties: dict[str, Any] = schema["properties"]
        for name in names:
            not_null(properties[name])
            properties[name].pop("default", None)

    return extra


def needed_unless(name: str, other: str) -> Callable[[dict[str, Any]], None]:
    """A ``json_schema_extra`` for two optional fields one of which a body needs: ``name``,
    not null, unless ``other`` is given (not null). The service refuses the same bodies.

    Said with ``if``/``then``, which validators apply and client generators leave alone (a
    top-level ``anyOf`` of partial schemas would make them a type for each branch holding
    that field only). The model's description should say it too.
    """

    def extra(schema: dict[str, Any]) -> None:
        declared = schema["properties"][name]
        branches = [b for b in declared.get("anyOf", [declared]) if b.get("type") != "null"]
        assert len(branches) == 1, (name, declared)
        schema["if"] = {"properties": {other: {"type": "null"}}}
        schema["then"] = {"required": [name], "properties": {name: branches[0]}}

    return extra


# Values that reach a device configuration (``shared.allow_lists``, checked again by the
# HAProxy renderer).
def _url_path(value: str) -> str:
    if not URL_PATH.fullmatch(value):
        raise ValueError(
            "must start with / and hold only URL characters (no spaces, quotes, # or controls)"
        )
    return value


def _expected_codes(value: str) -> str:
    if not EXPECTED_CODES.fullmatch(value):
        raise ValueError("must be a code, a list (200,202) or a range (200-204) of HTTP codes")
    return value


def _cookie_name(value: str) -> str:
    if not COOKIE_NAME.fullmatch(value):
        raise ValueError("must be a cookie token (letters, digits and !&*+-.^_`|~)")
    return value


def network(value: str) -> str:
    """A network in CIDR notation, host bits zero, normalised; no IPv6 scope (zone) id."""
    try:
        parsed = ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a network in CIDR notation ({exc})") from None
    if "%" in value:
        raise ValueError(f"{value!r} has a scope (zone) id, which a network here cannot have")
    return str(parsed)


def _cidr_list(values: list[str]) -> list[str]:
    return [network(value) for value in values]


UrlPath = Annotated[str, Strict(), documented(URL_PATH), AfterValidator(_url_path)]
ExpectedCodes = Annotated[
    str, Strict(), documented(EXPECTED_CODES), AfterValidator(_expected_codes)
]
CookieName = Annotated[str, Strict(), documented(COOKIE_NAME), AfterValidator(_cookie_name)]
Port = Annotated[int, Strict(), Field(ge=1, le=65535), INTEGRAL]
CIDR = Field(
    description="An IPv4 or IPv6 network in CIDR notation, host bits zero (10.0.0.0/24).",
    json_schema_extra={"format": "cidr"},
)
"""How a network is documented: the (custom) string format ``cidr``."""
CidrList = Annotated[
    list[Annotated[str, Strict(), CIDR]],
    Field(max_length=100),
    AfterValidator(_cidr_list),
]
