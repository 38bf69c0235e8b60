"""Octavia-style listing on real PostgreSQL: keyset pages, links, sorting, filters, tags, fields."""

from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address, ip_network
from itertools import chain
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from uuid import UUID, uuid4

import httpx
import pytest
from fastapi import Depends, FastAPI, Request
from sqlalchemy import Connection, event, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from api_service.db.engine import SessionFactory, create_engine, session_factory
from api_service.db.listing import MAX_LIMIT, ListQuery, Page, fetch_page, parse_bool
from api_service.db.models import Device, LoadBalancer
from api_service.errors import DomainError
from api_service.problems import install_problem_handlers, problem_of
from api_service.routers.listing import (
    list_query_dependency,
    page_links,
    parse_list_query,
    select_fields,
)
from api_service.settings import ApiSettings
from tests.support.stack import isolated

ORIGIN = "http://lbaas.test"
BASE = f"{ORIGIN}/v2/lbaas/devices"
WALK = Device.operating_status == "walk"
BULK = Device.operating_status == "bulk"
FILTERS: dict[str, Callable[[str], object]] = {
    "name": str,
    "driver": str,
    "capacity": int,
    "enabled": parse_bool,
}
SORTS = frozenset({"name", "driver", "capacity"})
WALKED = 250
BULKED = MAX_LIMIT + 100


@dataclass(frozen=True)
class Db:
    engine: AsyncEngine
    sessions: SessionFactory
    walk: list[Device]
    """The 250 ``walk`` rows as inserted: names unique, drivers and capacities with ties."""


@pytest.fixture(scope="module")
async def db() -> AsyncIterator[Db]:
    async with isolated() as isolation:
        engine = create_engine(ApiSettings(database_url=isolation.database_url))
        sessions = session_factory(engine)
        walk = [_device(i, "walk") for i in range(WALKED)]
        async with sessions.begin() as session:
            await session.execute(insert(Device), [_columns(d) for d in walk])
            bulk = [_device(i, "bulk") for i in range(BULKED)]
            await session.execute(insert(Device), [_columns(d) for d in bulk])
        try:
            yield Db(engine, sessions, walk)
        finally:
            await engine.dispose()


def _device(i: int, batch: str) -> Device:
    return Device(
        id=uuid4(),
        name=f"{batch}{(i * 37) % 10_000:05d}",
        driver=f"drv{i % 7}",
        management_url=f"noop://{batch}-{i}",
        vip_cidr=ip_network(f"10.{i // 256}.{i % 256}.0/24"),
        capacity=i % 5,
        enabled=i % 2 == 0,
        loadbalancer_count=0,
        operating_status=batch,
        created_at=datetime(2024, 1, 1, tzinfo=UTC) + timedelta(seconds=i // 3),
    )


def _columns(device: Device) -> dict[str, Any]:
    return {
        c.key: getattr(device, c.key) for c in Device.__table__.columns if c.key != "updated_at"
    }


def _request(url: str) -> Request:
    parts = urlsplit(url)
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": parts.scheme,
            "server": (parts.hostname, parts.port or 80),
            "path": parts.path,
            "root_path": "",
            "query_string": parts.query.encode(),
            "headers": [(b"host", parts.netloc.encode())],
        }
    )


def _url(**params: str | list[str]) -> str:
    return f"{BASE}?{urlencode(params, doseq=True, safe=',:')}" if params else BASE


async def _page(db: Db, url: str, scope: Any = WALK) -> tuple[Page[Device], dict[str, str]]:
    request = _request(url)
    async with db.sessions() as session:
        page = await fetch_page(
            session,
            Device,
            parse_list_query(request.query_params),
            scope=scope,
            filterable=FILTERS,
            sortable=SORTS,
        )
    links = page_links(request, ORIGIN, page, lambda device: device.id)
    flags = (("previous", page.has_previous), ("next", page.has_next))
    expected = [rel for rel, present in flags if present and page.items]
    assert [link["rel"] for link in links] == expected
    return page, {link["rel"]: link["href"] for link in links}


async def _walk(db: Db, url: str, rel: str) -> list[list[UUID]]:
    """Follow ``rel`` links from ``url`` to the end; the pages' ids in the order visited."""
    pages = []
    next_url: str | None = url
    while next_url is not None:
        page, links = await _page(db, next_url)
        pages.append([device.id for device in page.items])
        next_url = links.get(rel)
    return pages


def _flat(pages: Iterable[list[UUID]]) -> list[UUID]:
    return list(chain.from_iterable(pages))


def _ids(devices: Sequence[Device]) -> list[UUID]:
    return [device.id for device in devices]


def _default_order(db: Db) -> list[UUID]:
    return _ids(sorted(db.walk, key=lambda d: (d.created_at, d.id)))


def _problem_field(exc: pytest.ExceptionInfo[DomainError], status: int = 400) -> str:
    problem = problem_of(exc.value).problem
    assert problem.status == status
    assert problem.errors is not None
    return problem.errors[0].field


async def test_forward_walk_visits_every_row_once(db: Db) -> None:
    pages = await _walk(db, _url(limit="100"), "next")
    assert [len(page) for page in pages] == [100, 100, 50]
    assert _flat(pages) == _default_order(db)

    first, links = await _page(db, _url(limit="100"))
    assert (first.has_previous, first.has_next) == (False, True)
    assert links == {"next": f"{BASE}?limit=100&marker={pages[0][-1]}"}


async def test_previous_link_gives_back_the_page_before(db: Db) -> None:
    first, _ = await _page(db, _url(limit="100"))
    second, links = await _page(db, _url(limit="100", marker=str(first.items[-1].id)))
    assert links["previous"] == f"{BASE}?limit=100&marker={second.items[0].id}&page_reverse=True"
    back, back_links = await _page(db, links["previous"])
    assert _ids(back.items) == _ids(first.items)
    assert (back.has_previous, back.has_next) == (False, True)
    assert back_links == {"next": f"{BASE}?limit=100&marker={first.items[-1].id}"}


async def test_backward_walk_from_the_end(db: Db) -> None:
    last, links = await _page(db, _url(limit="100", page_reverse="true"))
    assert (last.has_previous, last.has_next) == (True, False)
    assert "next" not in links
    pages = await _walk(db, _url(limit="100", page_reverse="true"), "previous")
    assert [len(page) for page in pages] == [100, 100, 50]
    assert _flat(reversed(pages)) == _default_order(db)


async def test_past_the_last_row_is_an_empty_page_without_links(db: Db) -> None:
    page, links = await _page(db, _url(marker=str(_default_order(db)[-1])))
    assert page.items == [] and page.has_previous and not page.has_next
    assert links == {}


@pytest.mark.parametrize("ascending", [True, False])
async def test_sort_by_name(db: Db, ascending: bool) -> None:
    direction = "asc" if ascending else "desc"
    pages = await _walk(db, _url(limit="60", sort=f"name:{direction}"), "next")
    expected = sorted(db.walk, key=lambda d: d.name, reverse=not ascending)
    assert _flat(pages) == _ids(expected)


async def test_mixed_directions_with_ties(db: Db) -> None:
    expected = _ids(sorted(db.walk, key=lambda d: (d.driver, -d.capacity, d.created_at, d.id)))
    for params in (
        {"sort": "driver:asc,capacity:desc"},
        {"sort_key": "driver,capacity", "sort_dir": "asc,desc"},
    ):
        forward = await _walk(db, _url(limit="37", **params), "next")
        assert _flat(forward) == expected, params
        backward = await _walk(db, _url(limit="37", page_reverse="True", **params), "previous")
        assert _flat(reversed(backward)) == expected, params

    page, links = await _page(db, _url(limit="37", sort="driver:asc,capacity:desc"))
    assert links["next"] == (
        f"{BASE}?limit=37&sort=driver:asc,capacity:desc&marker={page.items[-1].id}"
    )


async def test_filters_are_in_lists_and_survive_paging(db: Db) -> None:
    url = _url(limit="10", driver=["drv1", "drv3"], enabled="true", fields="id")
    pages = await _walk(db, url, "next")
    expected = [
        d.id
        for d in sorted(db.walk, key=lambda d: (d.created_at, d.id))
        if d.driver in ("drv1", "drv3") and d.enabled
    ]
    assert _flat(pages) == expected
    _, links = await _page(db, url)
    assert urlsplit(links["next"]).query.startswith("limit=10&driver=drv1&driver=drv3&enabled=true")
    assert ("fields", "id") in parse_qsl(urlsplit(links["next"]).query)

    capacity, _ = await _page(db, _url(capacity="2"))
    assert {d.capacity for d in capacity.items} == {2}
    assert len(capacity.items) == WALKED // 5


@pytest.mark.parametrize(
    ("params", "field", "mentions"),
    [
        ({"colour": "red"}, "colour", "filterable: capacity, driver, enabled, name"),
        ({"capacity": "lots"}, "capacity", "'lots'"),
        ({"enabled": "maybe"}, "enabled", "true or false"),
        ({"sort": "management_url"}, "sort", "sortable"),
        ({"tags": "red"}, "tags", "no tags"),
    ],
)
async def test_bad_filters_and_sorts_are_400(
    db: Db, params: dict[str, str], field: str, mentions: str
) -> None:
    with pytest.raises(DomainError) as exc:
        await _page(db, _url(**params))
    assert _problem_field(exc) == field
    assert mentions in exc.value.detail


async def test_a_marker_that_names_no_object_is_404(db: Db) -> None:
    with pytest.raises(DomainError) as exc:
        await _page(db, _url(marker=str(uuid4())))
    assert _problem_field(exc, 404) == "marker"
    assert "not found" in exc.value.detail


async def test_a_marker_outside_the_scope_is_not_found(db: Db) -> None:
    outsider, _ = await _page(db, _url(limit="1"), scope=BULK)
    with pytest.raises(DomainError) as exc:
        await _page(db, _url(marker=str(outsider.items[0].id)))
    assert _problem_field(exc, 404) == "marker"


async def test_limit_is_capped_and_every_query_is_limited(db: Db) -> None:
    statements: list[str] = []

    def record(_conn: Connection, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        for url in (BASE, _url(limit="5000")):
            page, links = await _page(db, url, scope=BULK)
            assert len(page.items) == MAX_LIMIT and page.has_next
            assert links["next"] == f"{BASE}?limit={MAX_LIMIT}&marker={page.items[-1].id}"
            rest, rest_links = await _page(db, links["next"], scope=BULK)
            assert len(rest.items) == BULKED - MAX_LIMIT and not rest.has_next
            assert set(rest_links) == {"previous"}
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 6
    assert all("LIMIT" in s for s in selects), selects


async def test_tag_filters(db: Db) -> None:
    project = f"tags-{uuid4().hex[:8]}"
    tagged = {
        "a": ["red", "blue"],
        "b": ["red"],
        "c": ["blue", "green"],
        "d": [],
        "e": ["green"],
    }
    device = _device(0, project)  # a device of its own, with room: each row counts on it
    device.capacity, device.enabled, device.operating_status = len(tagged), True, "tags"
    async with db.sessions.begin() as session:
        await session.execute(insert(Device), [_columns(device)])
        await session.execute(
            insert(LoadBalancer),
            [
                {
                    "id": uuid4(),
                    "project_id": project,
                    "name": name,
                    "provisioning_status": "ACTIVE",
                    "operating_status": "ONLINE",
                    "provider": "noop",
                    "device_id": device.id,
                    "vip_address": ip_address(f"192.0.2.{i + 1}"),
                    "tags": tags,
                }
                for i, (name, tags) in enumerate(tagged.items())
            ],
        )

    async def names(query: str) -> set[str]:
        request = _request(f"http://lbaas.test/v2/lbaas/loadbalancers?{query}")
        async with db.sessions() as session:
            page = await fetch_page(
                session,
                LoadBalancer,
                parse_list_query(request.query_params),
                scope=LoadBalancer.project_id == project,
                filterable={"name": str},
                sortable=frozenset({"name"}),
            )
        return {lb.name for lb in page.items}

    assert await names("tags=red,blue") == {"a"}
    assert await names("tags=red&tags=blue") == {"a"}
    assert await names("tags=red") == {"a", "b"}
    assert await names("tags-any=red,green") == {"a", "b", "c", "e"}
    assert await names("not-tags=red,blue") == {"b", "c", "d", "e"}
    assert await names("not-tags-any=red,blue") == {"d", "e"}
    assert await names("tags=blue&tags-any=green,orange") == {"c"}
    assert await names("not-tags-any=green&name=a&name=c&name=d") == {"a", "d"}


def test_select_fields_keeps_only_known_requested_keys() -> None:
    body = {"id": 1, "name": "x", "tags": []}
    assert select_fields(body, ["id", "tags", "no_such_field"]) == {"id": 1, "tags": []}
    assert select_fields(body, None) == body
    assert select_fields(body, []) == {}


@pytest.fixture(scope="module")
async def app() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    parse = list_query_dependency(frozenset({"cascade"}))

    @app.get("/things")
    async def things(query: ListQuery = Depends(parse)) -> dict[str, Any]:
        return {
            "filters": query.filters,
            "sort": query.sort,
            "limit": query.limit,
            "marker": query.marker,
            "page_reverse": query.page_reverse,
            "fields": query.fields,
            "tags": [query.tags, query.tags_any, query.not_tags, query.not_tags_any],
        }

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def test_list_query_parses_octavia_parameters(app: httpx.AsyncClient) -> None:
    marker = uuid4()
    query = (
        "sort=name:DESC,created_at&limit=5000&page_reverse=TRUE&fields=id,name&fields=tags"
        f"&cascade=true&name=a&name=b&tags=red,blue&tags=green&tags-any=x&not-tags=y"
        f"&not-tags-any=z,w&marker={marker}&sort_key=ignored"
    )
    response = await app.get(f"/things?{query}")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "filters": {"name": ["a", "b"]},
        "sort": [["name", False], ["created_at", True]],
        "limit": MAX_LIMIT,
        "marker": str(marker),
        "page_reverse": True,
        "fields": ["id", "name", "tags"],
        "tags": [["red", "blue", "green"], ["x"], ["y"], ["z", "w"]],
    }

    defaults = (await app.get("/things")).json()
    assert defaults["sort"] == [["created_at", True]]
    assert (defaults["limit"], defaults["page_reverse"], defaults["fields"]) == (None, False, None)

    legacy = (await app.get("/things?sort_key=name,driver&sort_dir=desc")).json()
    assert legacy["sort"] == [["name", False], ["driver", True]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=0", "limit"),
        ("limit=-1", "limit"),
        ("page_reverse=yes", "page_reverse"),
        ("marker=not-a-uuid", "marker"),
        ("sort=name:up", "sort"),
        ("sort=name:asc:again", "sort"),
        ("sort=:asc", "sort"),
        ("sort_key=name&sort_dir=sideways", "sort_dir"),
    ],
)
async def test_malformed_parameters_are_400_naming_them(
    app: httpx.AsyncClient, query: str, field: str
) -> None:
    response = await app.get(f"/things?{query}")
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == field
