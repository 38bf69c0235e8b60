"""Version discovery and health (no token needed). The Prometheus metrics are not served
here but on an address of their own (``api_service.metrics``)."""

from typing import Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api_service.problems import Problem, problem_response, problems
from api_service.routers.http import absolute_url
from api_service.runtime import Runtime, get_runtime

router = APIRouter(tags=["service"])


class Link(BaseModel):
    href: str
    rel: str


class Version(BaseModel):
    id: str
    status: str
    links: list[Link]


class Versions(BaseModel):
    versions: list[Version]


class VersionBody(BaseModel):
    version: Version


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready"]


@router.get("/", operation_id="listVersions", summary="API versions (for client discovery)")
async def versions(request: Request) -> Versions:
    return Versions(versions=[_version(request)])


def _version(request: Request) -> Version:
    return Version(
        id="v2.0", status="CURRENT", links=[Link(href=absolute_url(request, "/v2"), rel="self")]
    )


@router.get("/v2", operation_id="showVersion", summary="The v2 API version (for discovery)")
@router.get("/v2.0", include_in_schema=False)
async def version(request: Request) -> VersionBody:
    return VersionBody(version=_version(request))


@router.get("/healthz", operation_id="healthz", summary="The process is alive")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="PostgreSQL and RabbitMQ are reachable",
    response_model=Readiness,
    responses={
        503: {**problems(503)[503], "description": "A dependency is unreachable"},
    },
)
async def readyz(runtime: Runtime = Depends(get_runtime)) -> JSONResponse:
    down = []
    if not await runtime.database_ok():
        down.append("PostgreSQL")
    if not runtime.broker.is_connected:
        down.append("RabbitMQ")
    if not runtime.bootstrapped.is_set():
        down.append("the bootstrap admin token (not stored yet)")
    if down:
        return problem_response(
            Problem(
                title="Not Ready",
                status=503,
                detail=f"Unreachable: {', '.join(down)}.",
            )
        )
    return JSONResponse({"status": "ready"})
