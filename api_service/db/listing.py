"""Octavia-style list queries: filters, tag filters, sorting and keyset pagination, as SQL.

Clients send the query parameters of Octavia's ``PaginationHelper``
(``limit``, ``marker``, ``page_reverse``, ``sort`` or ``sort_key``/``sort_dir``,
``fields``, ``tags``/``tags-any``/``not-tags``/``not-tags-any``, and any other
parameter as an equality filter) and follow the ``rel: next`` entry of
``<collection>_links``. The answers are Octavia's; the implementation is not:

- A page is found with a keyset condition built from the marker row's sort-key
  values, so deep pages cost what the first one does, and every query is
  bounded by a ``LIMIT`` (a page reads at most ``limit + 1`` rows: the extra row
  says whether there is a next page, so no ``next`` link points at an empty page).
- ``page_reverse`` returns the page *immediately* before the marker (Octavia
  returns the first rows of the collection that precede it); without a marker it
  returns the last page, as Neutron does, so a client can walk backwards from the end.

The query string is parsed, and links are made, by ``routers.listing``.
"""

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import ip_address, ip_network
from typing import Any, Generic, TypeVar
from uuid import UUID

from sqlalchemy import Column, ColumnElement, and_, func, inspect, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import UnaryExpression

from api_service.errors import Invalid, NotFound

MAX_LIMIT = 1000
"""Octavia's default ``pagination_max_limit``: no page holds more rows."""

DEFAULT_SORT: tuple[tuple[str, bool], ...] = (("created_at", True),)

_TIE_BREAKERS = ("created_at", "id")
"""Octavia's ``DEFAULT_SORT_KEYS``: appended (ascending) to any sort that lacks them."""


T = TypeVar("T")

Columns = Mapping[str, Column[Any]]
SortKey = tuple[Column[Any], bool]


@dataclass(frozen=True)
class Filter:
    """A filter other than "the column of its name equals the value": its values' parser, and
    the condition rows meet given the (parsed) values asked for."""

    parse: Callable[[str], object]
    where: Callable[[Columns, list[Any]], ColumnElement[bool]]
    description: str
    """What it selects, for the OpenAPI document."""


Filters = Mapping[str, Callable[[str], object] | Filter]
"""The filters of a list: by name, the parser of a value for an equality on the column of that
name, or a ``Filter``."""


@dataclass(frozen=True)
class ListQuery:
    """What a list request asks for, parsed but not yet checked against a model."""

    filters: dict[str, list[str]] = field(default_factory=dict)
    sort: list[tuple[str, bool]] = field(default_factory=lambda: list(DEFAULT_SORT))
    limit: int | None = None
    marker: UUID | None = None
    page_reverse: bool = False
    fields: list[str] | None = None
    tags: list[str] = field(default_factory=list)
    tags_any: list[str] = field(default_factory=list)
    not_tags: list[str] = field(default_factory=list)
    not_tags_any: list[str] = field(default_factory=list)

    @property
    def page_size(self) -> int:
        return min(self.limit or MAX_LIMIT, MAX_LIMIT)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    has_next: bool
    has_previous: bool


_INTEGER = re.compile(r"\A-?[0-9]{1,10}\Z")
INT32 = (-(2**31), 2**31 - 1)


def parse_int(raw: str) -> int:
    """A filter value parser for integer columns: ASCII digits, within a 32-bit integer."""
    if not _INTEGER.fullmatch(raw) or not INT32[0] <= int(raw) <= INT32[1]:
        raise ValueError(f"must be an integer from {INT32[0]} to {INT32[1]}")
    return int(raw)


def parse_address(raw: str) -> object:
    """A filter value parser for address columns: an IP address without a scope (zone) id."""
    address = ip_address(raw)
    if getattr(address, "scope_id", None):
        raise ValueError("an address here has no scope (zone) id")
    return address


def parse_network(raw: str) -> object:
    """A filter value parser for network columns: CIDR notation, host bits zero, no scope id."""
    if "%" in raw:
        raise ValueError("a network here has no scope (zone) id")
    return str(ip_network(raw, strict=True))


TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S"
"""Octavia's timestamps, as the API writes them and filters read them: UTC, to the second, no
offset (gophercloud parses them with the layout ``2006-01-02T15:04:05``, which takes nothing
else)."""
TIMESTAMP = re.compile(r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\Z")


def parse_timestamp(raw: str) -> datetime | None:
    """A filter value parser for timestamp columns: as the API writes them (UTC, to the second,
    no offset: ``2026-01-31T12:00:00``); None for one of that form that names no moment
    (``2026-02-30T00:00:00``), which no row has."""
    if not TIMESTAMP.fullmatch(raw):
        raise ValueError("must be a time as the API shows them: 2026-01-31T12:00:00 (UTC)")
    try:
        return datetime.strptime(raw, TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def to_the_second(column: str) -> Filter:
    """Rows whose timestamp ``column`` is the value to the second (the API shows no fraction)."""

    def where(columns: Columns, moments: list[datetime | None]) -> ColumnElement[bool]:
        real = [moment for moment in moments if moment is not None]
        return func.date_trunc("second", columns[column]).in_(real)

    return Filter(parse_timestamp, where, f"Only objects whose {column} is this second.")


def alias_of(column: str, parse: Callable[[str], object], client: str) -> Filter:
    """Another name (``client``'s) of the equality filter on ``column``."""
    return Filter(
        parse,
        lambda columns, values: _equal(columns[column], values),
        f"Only objects whose {column} is this (the name {client} gives that filter).",
    )


def _equal(column: Column[Any], values: list[Any]) -> ColumnElement[bool]:
    return column == values[0] if len(values) == 1 else column.in_(values)


def parse_bool(raw: str) -> bool:
    """A filter value parser for boolean columns: ``true`` or ``false``, any case."""
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise ValueError("must be true or false")
    return lowered == "true"


async def fetch_page(
    session: AsyncSession,
    model: type[T],
    query: ListQuery,
    *,
    scope: ColumnElement[bool] | None,
    filterable: Filters,
    sortable: frozenset[str],
) -> Page[T]:
    """One page of ``model`` rows within ``scope`` (always applied: project, parent object).

    ``filterable`` maps each filterable column to a parser of a raw query value
    (raising ``ValueError`` on a bad one), or names a ``Filter``; ``sortable`` names the
    columns a client may sort by, besides ``created_at`` and ``id``, which may always be
    sorted by.
    """
    columns: Columns = inspect(model).columns
    conditions = [
        *([] if scope is None else [scope]),
        *_filter_conditions(columns, query.filters, filterable),
        *_tag_conditions(columns, query),
    ]
    keys = _sort_keys(columns, query.sort, sortable, reverse=query.page_reverse)
    if query.marker is not None:
        values = await _marker_values(session, columns, keys, query.marker, scope)
        conditions.append(_after(keys, values))
    size = query.page_size
    statement = select(model).where(*conditions).order_by(*_ordering(keys)).limit(size + 1)
    rows = list(await session.scalars(statement))
    more = len(rows) > size
    del rows[size:]
    if not query.page_reverse:
        return Page(rows, has_next=more, has_previous=query.marker is not None)
    rows.reverse()
    return Page(rows, has_next=query.marker is not None, has_previous=more)


def _filter_conditions(
    columns: Columns, filters: Mapping[str, list[str]], filterable: Filters
) -> list[ColumnElement[bool]]:
    conditions = []
    for name, raws in filters.items():
        spec = filterable.get(name)
        if spec is None:
            allowed = ", ".join(sorted(filterable))
            raise Invalid(name, f"is not a filterable field; filterable: {allowed}")
        parse = spec.parse if isinstance(spec, Filter) else spec
        values = [_parsed(name, parse, raw) for raw in raws]
        if isinstance(spec, Filter):
            conditions.append(spec.where(columns, values))
        else:
            conditions.append(_equal(columns[name], values))
    return conditions


def _parsed(name: str, parse: Callable[[str], object], raw: str) -> object:
    try:
        return parse(raw)
    except ValueError as exc:
        raise Invalid(name, f"{raw!r} is not a valid value: {exc}") from None


def _tag_conditions(columns: Columns, query: ListQuery) -> list[ColumnElement[bool]]:
    """Octavia's tag filters on an ``ARRAY`` column: ``@>`` for all of, ``&&`` for any of."""
    asked = {
        name: tags
        for name, tags in (
            ("tags", query.tags),
            ("tags-any", query.tags_any),
            ("not-tags", query.not_tags),
            ("not-tags-any", query.not_tags_any),
        )
        if tags
    }
    if not asked:
        return []
    column = columns.get("tags")
    if column is None:
        raise Invalid(next(iter(asked)), "is not a filterable field; these objects have no tags")
    builders: dict[str, Callable[[list[str]], ColumnElement[bool]]] = {
        "tags": column.contains,
        "tags-any": column.overlap,
        "not-tags": lambda tags: ~column.contains(tags),
        "not-tags-any": lambda tags: ~column.overlap(tags),
    }
    return [builders[name](tags) for name, tags in asked.items()]


def _sort_keys(
    columns: Columns, sort: Sequence[tuple[str, bool]], sortable: frozenset[str], *, reverse: bool
) -> list[SortKey]:
    """The requested keys, then the tie-breakers, with directions flipped for a reverse page."""
    keys: dict[str, bool] = {}
    for name, ascending in sort:
        if name not in sortable and name not in _TIE_BREAKERS:
            allowed = ", ".join(sorted(sortable | set(_TIE_BREAKERS)))
            raise Invalid("sort", f"{name!r} is not a sortable field; sortable: {allowed}")
        keys.setdefault(name, ascending)
    for name in _TIE_BREAKERS:
        if name in columns:
            keys.setdefault(name, True)
    return [(columns[name], ascending != reverse) for name, ascending in keys.items()]


def _ordering(keys: Sequence[SortKey]) -> list[UnaryExpression[Any]]:
    return [column.asc() if ascending else column.desc() for column, ascending in keys]


async def _marker_values(
    session: AsyncSession,
    columns: Columns,
    keys: Sequence[SortKey],
    marker: UUID,
    scope: ColumnElement[bool] | None,
) -> Sequence[Any]:
    statement = select(*(column for column, _ in keys)).where(columns["id"] == marker).limit(1)
    if scope is not None:
        statement = statement.where(scope)
    values = (await session.execute(statement)).first()
    if values is None:
        raise NotFound("object", marker, field="marker")
    return values


def _after(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after ``values`` in the order of ``keys``.

    One row comparison when every key goes the same way (it can use a
    composite index); otherwise ``(a > x) OR (a = x AND b > y) OR ...``.
    """
    if len({ascending for _, ascending in keys}) == 1:
        left = tuple_(*(column for column, _ in keys))
        right = tuple_(
            *(literal(v, column.type) for (column, _), v in zip(keys, values, strict=True))
        )
        return left > right if keys[0][1] else left < right
    chain = []
    for i, (column, ascending) in enumerate(keys):
        equal = [c == v for (c, _), v in zip(keys[:i], values, strict=False)]
        chain.append(and_(*equal, column > values[i] if ascending else column < values[i]))
    return or_(*chain)
