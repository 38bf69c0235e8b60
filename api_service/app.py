"""The FastAPI application: routers under ``/v2`` and its alias ``/v2.0``, Keystone's
``/identity`` at the root, problem handlers."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI

from api_service import openapi
from api_service.context import Authentication
from api_service.idempotency import IdempotencyMiddleware
from api_service.limits import BodyLimits, PathLimits
from api_service.metrics import Metrics, RequestMetrics
from api_service.problems import ProblemEdge, install_problem_handlers
from api_service.request_ids import RequestIds
from api_service.resources.catalog import RESOURCES
from api_service.routers import (
    devices,
    identity,
    listeners,
    loadbalancers,
    members,
    networks,
    operations,
    providers,
    quotas,
    root,
    tokens,
)
from api_service.routers.definitions import DEFINITION_ROUTES, definition_router
from api_service.routers.http import STATUS_CODES
from api_service.routers.resources import resource_router
from api_service.runtime import Runtime
from api_service.services.definitions import DefinitionService
from api_service.services.resource import ResourceService
from api_service.settings import ApiSettings


def _service_of(key: str, runtime: Runtime) -> ResourceService[Any]:
    return runtime.resources[key]


def _definitions_of(kind: str, runtime: Runtime) -> DefinitionService[Any]:
    return runtime.definitions[kind]


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    metrics = Metrics()
    codes = STATUS_CODES[settings.status_codes]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings, metrics)
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(
        title="lbaas",
        summary="Asynchronous Load-Balancer-as-a-Service (OpenStack Load Balancer v2 compatible)",
        version="2.0",
        description=openapi.description(codes.summary),
        lifespan=lifespan,
        # /docs is served by api_service.openapi from a package's copy of Swagger UI (the
        # defaults load it, and ReDoc, from a CDN).
        docs_url=None,
        redoc_url=None,
    )
    openapi.install(app)
    install_problem_handlers(app)
    # Outermost last: request ids, problems (media type, 500s), metrics, the path, the token,
    # the body, Idempotency-Key.
    app.add_middleware(
        IdempotencyMiddleware,
        sessions=lambda scope: scope["app"].state.runtime.sessions,
        # A Keystone token exchange is never replayed today (it carries no caller), but its
        # answer holds a token: it must never be stored, whoever authenticates it later.
        secret_answers={tokens.create, identity.issue_token},
    )
    app.add_middleware(BodyLimits)
    app.add_middleware(Authentication)
    app.add_middleware(PathLimits)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(ProblemEdge)
    app.add_middleware(RequestIds)
    app.include_router(root.router)
    app.include_router(identity.router)
    routers = [
        loadbalancers.loadbalancer_router(codes),
        *(resource_router(r, partial(_service_of, r.key), codes) for r in RESOURCES),
        *(
            definition_router(d, partial(_definitions_of, d.definition.kind))
            for d in DEFINITION_ROUTES
        ),
        listeners.router,
        members.router,
        networks.router,
        devices.router,
        operations.router,
        providers.router,
        quotas.router,
        tokens.router,
    ]
    for prefix, documented in (("/v2", True), ("/v2.0", False)):
        for router in routers:
            app.include_router(router, prefix=prefix, include_in_schema=documented)
    return app
