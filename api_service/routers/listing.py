"""List requests over HTTP: Octavia's query parameters parsed into a ``db.listing.ListQuery``,
and the ``<collection>_links`` of a page.

Links keep every query parameter of the request (filters, sort, fields), not
only ``limit``, ``sort`` and ``sort_key``, and start with the API's public URL, never with
the request's ``Host``.
"""

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlencode
from uuid import UUID

from fastapi import Request
from starlette.datastructures import QueryParams

from api_service.db.listing import DEFAULT_SORT, MAX_LIMIT, ListQuery, Page, parse_bool
from api_service.errors import Invalid

T = TypeVar("T")

_PAGING_PARAMS = frozenset(
    {"limit", "marker", "page_reverse", "sort", "sort_key", "sort_dir", "fields"}
)
_TAG_PARAMS = frozenset({"tags", "tags-any", "not-tags", "not-tags-any"})
_LINK_PARAMS = frozenset({"limit", "marker", "page_reverse"})


def parse_list_query(
    params: QueryParams,
    reserved: frozenset[str] = frozenset(),
    default_sort: Sequence[tuple[str, bool]] = DEFAULT_SORT,
) -> ListQuery:
    """Parse Octavia's list parameters; ``reserved`` names belong to the caller, not to filters;
    ``default_sort`` is the order when the request asks for none."""
    for name, value in params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise Invalid(name.replace("\x00", "\\x00"), "must not contain NUL characters.")
    return ListQuery(
        filters=_filters(params, _PAGING_PARAMS | _TAG_PARAMS | reserved),
        sort=_sort(params, default_sort),
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
    default_sort: Sequence[tuple[str, bool]] = DEFAULT_SORT,
) -> Callable[[Request], Awaitable[ListQuery]]:
    """A FastAPI dependency parsing the request's list parameters, leaving ``reserved`` alone."""

    async def dependency(request: Request) -> ListQuery:
        return parse_list_query(request.query_params, reserved, default_sort)

    return dependency


async def list_query(request: Request) -> ListQuery:
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
        raise Invalid("limit", f"must be an integer, not {raw!r}.")
    if raw.startswith("-") or not raw.strip("0"):
        raise Invalid("limit", f"must be at least 1, not {raw}.")
    digits = raw.lstrip("0")
    return MAX_LIMIT if len(digits) > len(str(MAX_LIMIT)) else min(int(digits), MAX_LIMIT)


def _marker(raw: str | None) -> UUID | None:
    if raw is None:
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise Invalid("marker", f"must be the id of an object, not {raw!r}.") from None


def _page_reverse(raw: str | None) -> bool:
    if raw is None:
        return False
    try:
        return parse_bool(raw)
    except ValueError:
        raise Invalid("page_reverse", f"must be true or false, not {raw!r}.") from None


def _sort(params: QueryParams, default: Sequence[tuple[str, bool]]) -> list[tuple[str, bool]]:
    """``sort=a:asc,b:desc`` wins over the legacy ``sort_key=a,b&sort_dir=asc,desc``.

    ``sort`` is exactly ``KEY[:DIR](,KEY[:DIR])*``: no blanks, no empty items (its OpenAPI
    pattern says the same).
    """
    if "sort" in params:
        keys = [_sort_item(item) for item in ",".join(params.getlist("sort")).split(",")]
    else:
        keys = _legacy_sort(_names(params.getlist("sort_key")), _names(params.getlist("sort_dir")))
    return keys or list(default)


def _sort_item(item: str) -> tuple[str, bool]:
    name, colon, direction = item.partition(":")
    if not name or ":" in direction or (colon and not direction):
        raise Invalid("sort", f"{item!r} is not KEY or KEY:asc or KEY:desc.")
    return name, _ascending("sort", direction or "asc")


def _legacy_sort(keys: list[str], directions: list[str]) -> list[tuple[str, bool]]:
    directions = directions + ["asc"] * (len(keys) - len(directions))
    return [(key, _ascending("sort_dir", d)) for key, d in zip(keys, directions, strict=False)]


def _ascending(parameter: str, direction: str) -> bool:
    lowered = direction.lower()
    if lowered not in ("asc", "desc"):
        raise Invalid(parameter, f"direction {direction!r} is not asc or desc.")
    return lowered == "asc"


def page_links(
    request: Request, base_url: str, page: Page[T], ids: Callable[[T], UUID]
) -> list[dict[str, str]]:
    """The ``<collection>_links`` list of a page: ``previous`` first, then ``next``.

    Each href is ``base_url`` (the API's public URL) with the request's path, then ``limit``
    (the effective page size, even when the client gave none, as Octavia does) first, the
    request's other parameters kept, then ``marker`` and, for ``previous``,
    ``page_reverse=True``.
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
        links.append({"href": _href(request, base_url, pairs), "rel": "previous"})
    if page.has_next:
        pairs = [*head, ("marker", str(ids(page.items[-1])))]
        links.append({"href": _href(request, base_url, pairs), "rel": "next"})
    return links


def _href(request: Request, base_url: str, pairs: list[tuple[str, str]]) -> str:
    return f"{base_url}{quote(request.url.path)}?{urlencode(pairs, safe=',:')}"


def select_fields(body: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    """Keep the requested keys; unknown names are ignored, as Octavia does."""
    if fields is None:
        return body
    wanted = set(fields)
    return {key: value for key, value in body.items() if key in wanted}
