"""``/lbaas/providers``: the providers the agents announced, and what their profiles may set.

As Octavia: a list of names and descriptions, unpaged, with ``fields=``; each
provider's ``flavor_capabilities`` and ``availability_zone_capabilities`` also take the
``name`` and ``description`` filters. An unknown provider is 404. Every project may
read them (it chooses a provider for its load balancers).
"""

from collections.abc import Mapping

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from api_service.access import RequestContext
from api_service.context import request_context
from api_service.problems import problems
from api_service.routers.http import CHECKED
from api_service.routers.listing import select_fields
from api_service.runtime import Runtime, get_runtime
from api_service.schemas.fields import not_null
from api_service.schemas.providers import (
    AvailabilityZoneCapabilityList,
    FlavorCapabilityList,
    NamedDescription,
    ProviderList,
)
from api_service.services.providers import availability_zone_options, flavor_options

router = APIRouter(prefix="/lbaas/providers", tags=["providers"])

FIELDS = Query(
    None,
    description="Only these fields of each entry (repeated or comma-separated; unknown ones "
    "ignored).",
    json_schema_extra=not_null,
)
NAME = Query(None, description="Only the capability of this name.", json_schema_extra=not_null)
PROVIDER = Path(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="The provider's name.")
DESCRIPTION = Query(
    None, description="Only capabilities with this description.", json_schema_extra=not_null
)


def _entries(
    described: Mapping[str, str],
    fields: list[str] | None,
    name: str | None = None,
    description: str | None = None,
) -> list[dict[str, str]]:
    """``name → description`` as Octavia's entries, filtered, with the fields asked for."""
    wanted = [field for value in fields or () for field in value.split(",") if field] or None
    return [
        select_fields(NamedDescription(name=key, description=text).model_dump(), wanted)
        for key, text in sorted(described.items())
        if (name is None or key == name) and (description is None or text == description)
    ]


@router.get(
    "",
    operation_id="listProviders",
    summary="List providers",
    description="The drivers the agents announced, by name.",
    response_model=ProviderList,
    responses=problems(*CHECKED, 400),
)
async def list_(
    fields: list[str] | None = FIELDS,
    _: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    providers = await runtime.providers.all()
    described = {provider.name: provider.description for provider in providers}
    return JSONResponse({"providers": _entries(described, fields)})


@router.get(
    "/{provider}/flavor_capabilities",
    operation_id="listFlavorCapabilities",
    summary="List a provider's flavor capabilities",
    description="The keys a flavor profile of the provider may set in its flavor_data.",
    response_model=FlavorCapabilityList,
    responses=problems(*CHECKED, 400, 404),
)
async def flavor_capabilities(
    provider: str = PROVIDER,
    fields: list[str] | None = FIELDS,
    name: str | None = NAME,
    description: str | None = DESCRIPTION,
    _: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    found = await runtime.providers.get(provider)
    return _capabilities("flavor_capabilities", flavor_options(found), fields, name, description)


@router.get(
    "/{provider}/availability_zone_capabilities",
    operation_id="listAvailabilityZoneCapabilities",
    summary="List a provider's availability zone capabilities",
    description="The keys an availability zone profile of the provider may set in its "
    "availability_zone_data.",
    response_model=AvailabilityZoneCapabilityList,
    responses=problems(*CHECKED, 400, 404),
)
async def availability_zone_capabilities(
    provider: str = PROVIDER,
    fields: list[str] | None = FIELDS,
    name: str | None = NAME,
    description: str | None = DESCRIPTION,
    _: RequestContext = Depends(request_context),
    runtime: Runtime = Depends(get_runtime),
) -> JSONResponse:
    found = await runtime.providers.get(provider)
    options = availability_zone_options(found)
    return _capabilities("availability_zone_capabilities", options, fields, name, description)


def _capabilities(
    key: str,
    options: Mapping[str, str],
    fields: list[str] | None,
    name: str | None,
    description: str | None,
) -> JSONResponse:
    """A provider's capabilities of one kind as Octavia lists them, under ``key``."""
    return JSONResponse({key: _entries(options, fields, name, description)})
