"""Version discovery and health."""

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api_service.problems import Problem, problem_response
from api_service.runtime import Runtime, get_runtime

router = APIRouter(tags=["service"])


@router.get("/", operation_id="listVersions", summary="API versions (for client discovery)")
async def versions(request: Request) -> dict[str, Any]:
    return {"versions": [_version(request)]}


def _version(request: Request) -> dict[str, Any]:
    return {
        "id": "v2.0",
        "status": "CURRENT",
        "links": [{"href": f"{request.base_url}v2", "rel": "self"}],
    }


@router.get("/v2", operation_id="showVersion", summary="The v2 API version (for discovery)")
@router.get("/v2.0", include_in_schema=False)
async def version(request: Request) -> dict[str, Any]:
    return {"version": _version(request)}


@router.get("/healthz", operation_id="healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="PostgreSQL and RabbitMQ are reachable",
    responses={503: {"model": Problem, "description": "A dependency is unreachable"}},
)
async def readyz(runtime: Runtime = Depends(get_runtime)) -> JSONResponse:
    down = []
    if not await runtime.database_ok():
        down.append("PostgreSQL")
    if not runtime.broker.is_connected:
        down.append("RabbitMQ")
    if down:
        return problem_response(
            Problem(
                title="Not Ready",
                status=503,
                detail=f"Unreachable: {', '.join(down)}.",
            )
        )
    return JSONResponse({"status": "ready"})
