"""No route runs in a worker thread: FastAPI hands a plain ``def`` endpoint or dependency to
anyio's thread pool, a hop (and a fight for the GIL) on every request for functions that do
no blocking work."""

import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from api_service.app import create_app
from api_service.settings import ApiSettings


def _api_routes(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every route, through included routers (FastAPI keeps those as ``original_router``)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def _calls(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for dependency in dependant.dependencies:
        yield from _calls(dependency)


def _runs_on_the_loop(call: Callable[..., Any]) -> bool:
    method = call if inspect.isroutine(call) else getattr(call, "__call__", None)  # noqa: B004
    return inspect.iscoroutinefunction(method) or inspect.isasyncgenfunction(method)


def test_every_endpoint_and_dependency_is_a_coroutine_function() -> None:
    app = create_app(ApiSettings.model_construct())
    threaded = {
        f"{route.path} {sorted(route.methods or ())}: {dependant.call}"
        for route in _api_routes(app.routes)
        for dependant in _calls(route.dependant)
        if dependant.call is not None and not _runs_on_the_loop(dependant.call)
    }
    assert len(list(_api_routes(app.routes))) > 100
    assert not threaded, sorted(threaded)
