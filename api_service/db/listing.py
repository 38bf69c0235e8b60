"""Octavia-style list queries: filters, tag filters, sorting, pagination, links, field selection.

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
- Links keep every query parameter of the request (filters, sort, fields), not
  only ``limit``, ``sort`` and ``sort_key``.
"""

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlencode
from uuid import UUID

from fastapi import Request
from sqlalchemy import Column, ColumnElement, and_, inspect, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import UnaryExpression
from starlette.datastructures import QueryParams

from api_service.problems import FieldError, ProblemError, invalid

MAX_LIMIT = 1000
"""Octavia's default ``pagination_max_limit``: no page holds more rows."""

DEFAULT_SORT: tuple[tuple[str, bool], ...] = (("created_at", True),)

_TIE_BREAKERS = ("created_at", "id")
"""Octavia's ``DEFAULT_SORT_KEYS``: appended (ascending) to any sort that lacks them."""

_PAGING_PARAMS = frozenset(
    {"limit", "marker", "page_reverse", "sort", "sort_key", "sort_dir", "fields"}
)
_TAG_PARAMS = frozenset({"tags", "tags-any", "not-tags", "not-tags-any"})
_LINK_PARAMS = frozenset({"limit", "marker", "page_reverse"})

T = TypeVar("T")

Columns = Mapping[str, Column[Any]]
SortKey = tuple[Column[Any], bool]


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


def parse_bool(raw: str) -> bool:
    """A filter value parser for boolean columns: ``true`` or ``false``, any case."""
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise ValueError("must be true or false")
    return lowered == "true"


def parse_list_query(params: QueryParams, reserved: frozenset[str] = frozenset()) -> ListQuery:
    """Parse Octavia's list parameters; ``reserved`` names belong to the caller, not to filters."""
    for name, value in params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise invalid(name.replace("\x00", "\\x00"), "must not contain NUL characters.")
    return ListQuery(
        filters=_filters(params, _PAGING_PARAMS | _TAG_PARAMS | reserved),
        sort=_sort(params),
        limit=_limit(params.get("limit")),
        marker=_marker(params.get("marker")),
        page_reverse=_page_reverse(params.get("page_reverse")),
        fields=_names(params.getlist("fields")) or None,
        tags=_names(params.getlist("tags")),
        tags_any=_names(params.getlist("tags-any")),
        not_tags=_names(params.getlist("not-tags")),
        not_tags_any=_names(params.getlist("not-tags-any")),
    )


def list_query_dependency(
    reserved: frozenset[str] = frozenset(),
) -> Callable[[Request], ListQuery]:
    """A FastAPI dependency parsing the request's list parameters, leaving ``reserved`` alone."""

    def dependency(request: Request) -> ListQuery:
        return parse_list_query(request.query_params, reserved)

    return dependency


def list_query(request: Request) -> ListQuery:
    """A FastAPI dependency for collections whose list takes no parameters of its own."""
    return parse_list_query(request.query_params)


def _filters(params: QueryParams, excluded: frozenset[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for name, value in params.multi_items():
        if name not in excluded:
            filters.setdefault(name, []).append(value)
    return filters


def _names(values: Iterable[str]) -> list[str]:
    """Comma-separated and repeated values, flattened, blanks dropped."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _limit(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not re.fullmatch(r"-?[0-9]+", raw):
        raise invalid("limit", f"must be an integer, not {raw!r}.")
    if raw.startswith("-") or not raw.strip("0"):
        raise invalid("limit", f"must be at least 1, not {raw}.")
    digits = raw.lstrip("0")
    return MAX_LIMIT if len(digits) > len(str(MAX_LIMIT)) else min(int(digits), MAX_LIMIT)


def _marker(raw: str | None) -> UUID | None:
    if raw is None:
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise invalid("marker", f"must be the id of an object, not {raw!r}.") from None


def _page_reverse(raw: str | None) -> bool:
    if raw is None:
        return False
    try:
        return parse_bool(raw)
    except ValueError:
        raise invalid("page_reverse", f"must be true or false, not {raw!r}.") from None


def _sort(params: QueryParams) -> list[tuple[str, bool]]:
    """``sort=a:asc,b:desc`` wins over the legacy ``sort_key=a,b&sort_dir=asc,desc``.

    ``sort`` is exactly ``KEY[:DIR](,KEY[:DIR])*``: no blanks, no empty items (its OpenAPI
    pattern says the same).
    """
    if "sort" in params:
        keys = [_sort_item(item) for item in ",".join(params.getlist("sort")).split(",")]
    else:
        keys = _legacy_sort(_names(params.getlist("sort_key")), _names(params.getlist("sort_dir")))
    return keys or list(DEFAULT_SORT)


def _sort_item(item: str) -> tuple[str, bool]:
    name, colon, direction = item.partition(":")
    if not name or ":" in direction or (colon and not direction):
        raise invalid("sort", f"{item!r} is not KEY or KEY:asc or KEY:desc.")
    return name, _ascending("sort", direction or "asc")


def _legacy_sort(keys: list[str], directions: list[str]) -> list[tuple[str, bool]]:
    directions = directions + ["asc"] * (len(keys) - len(directions))
    return [(key, _ascending("sort_dir", d)) for key, d in zip(keys, directions, strict=False)]


def _ascending(parameter: str, direction: str) -> bool:
    lowered = direction.lower()
    if lowered not in ("asc", "desc"):
        raise invalid(parameter, f"direction {direction!r} is not asc or desc.")
    return lowered == "asc"


async def fetch_page(
    session: AsyncSession,
    model: type[T],
    query: ListQuery,
    *,
    scope: ColumnElement[bool] | None,
    filterable: Mapping[str, Callable[[str], object]],
    sortable: frozenset[str],
) -> Page[T]:
    """One page of ``model`` rows within ``scope`` (always applied: project, parent object).

    ``filterable`` maps each filterable column to a parser of a raw query value
    (raising ``ValueError`` on a bad one); ``sortable`` names the columns a client
    may sort by, besides ``created_at`` and ``id``, which may always be sorted by.
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
    columns: Columns,
    filters: Mapping[str, list[str]],
    filterable: Mapping[str, Callable[[str], object]],
) -> list[ColumnElement[bool]]:
    conditions = []
    for name, raws in filters.items():
        parse = filterable.get(name)
        if parse is None:
            allowed = ", ".join(sorted(filterable))
            raise invalid(name, f"is not a filterable field; filterable: {allowed}")
        values = [_parsed(name, parse, raw) for raw in raws]
        column = columns[name]
        conditions.append(column == values[0] if len(values) == 1 else column.in_(values))
    return conditions


def _parsed(name: str, parse: Callable[[str], object], raw: str) -> object:
    try:
        return parse(raw)
    except ValueError as exc:
        raise invalid(name, f"{raw!r} is not a valid value: {exc}") from None


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
        raise invalid(next(iter(asked)), "is not a filterable field; these objects have no tags")
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
            raise invalid("sort", f"{name!r} is not a sortable field; sortable: {allowed}")
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
        raise ProblemError(
            404,
            "Not Found",
            f"marker: object {marker} not found.",
            errors=[FieldError(field="marker", message=f"object {marker} not found.")],
        )
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


def page_links(
    request: Request, page: Page[T], collection: str, ids: Callable[[T], UUID]
) -> list[dict[str, str]]:
    """The ``<collection>_links`` list of a page: ``previous`` first, then ``next``.

    Each href is the request URL with ``limit`` (the effective page size, even
    when the client gave none, as Octavia does) first, the request's other
    parameters kept, then ``marker`` and, for ``previous``, ``page_reverse=True``.
    ``collection`` (the body key is ``f"{collection}_links"``) does not enter the
    href: the request path already names the collection.
    """
    if not page.items:
        return []
    limit = _limit(request.query_params.get("limit")) or MAX_LIMIT
    kept = [(k, v) for k, v in request.query_params.multi_items() if k not in _LINK_PARAMS]
    head = [("limit", str(limit)), *kept]
    links = []
    if page.has_previous:
        marker = str(ids(page.items[0]))
        pairs = [*head, ("marker", marker), ("page_reverse", "True")]
        links.append({"href": _href(request, pairs), "rel": "previous"})
    if page.has_next:
        pairs = [*head, ("marker", str(ids(page.items[-1])))]
        links.append({"href": _href(request, pairs), "rel": "next"})
    return links


def _href(request: Request, pairs: list[tuple[str, str]]) -> str:
    return str(request.url.replace(query=urlencode(pairs, safe=",:")))


def select_fields(body: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Keep the requested keys; unknown names are ignored, as Octavia does."""
    if fields is None:
        return body
    wanted = set(fields)
    return {key: value for key, value in body.items() if key in wanted}
