"""The five routes of each operator-defined object (flavors, availability zones, profiles).

Synchronous, as Octavia's: ``POST`` answers 201 with the object, ``PUT`` 200,
``DELETE`` 204. Only admins change them; flavors and availability zones are read by
every project (it chooses among them), profiles by admins only. Lists take Octavia's
list parameters, as every list.
"""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api_service.context import admin_context, request_context
from api_service.db.listing import ListQuery
from api_service.problems import problems
from api_service.routers.http import (
    CHECKED,
    IDEMPOTENCY_KEY,
    absolute_url,
    list_parameters,
    page_response,
)
from api_service.routers.listing import list_query_dependency
from api_service.runtime import Runtime, get_runtime
from api_service.schemas import flavors as s
from api_service.services.definitions import (
    AVAILABILITY_ZONE_PROFILES,
    AVAILABILITY_ZONES,
    FLAVOR_PROFILES,
    FLAVORS,
    Definition,
    DefinitionService,
)

Endpoint = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class DefinitionRoutes:
    """How the API speaks of one kind of definition."""

    definition: Definition[Any]
    path: str
    """Under ``/lbaas``: ``flavorprofiles``."""
    key: str
    """The key of a body of one: ``flavorprofile``."""
    plural: str
    """The key of a list's body: ``flavorprofiles``."""
    operation: str
    """``FlavorProfile``: ``createFlavorProfile``, ``listFlavorProfiles``, …"""
    noun: str
    """``a flavor profile``, in summaries."""
    nouns: str
    """``flavor profiles``."""
    out: type[BaseModel]
    body: type[BaseModel]
    listing: type[BaseModel]
    create_body: type[BaseModel]
    update_body: type[BaseModel]
    path_id: str
    """The path parameter: ``flavorprofile_id``, ``availability_zone_name``."""
    projects_read: bool
    """Whether every project reads them (flavors, zones), or admins only (profiles)."""


ServiceOf = Callable[[Runtime], DefinitionService[Any]]

DEFINITION_ROUTES = (
    DefinitionRoutes(
        FLAVOR_PROFILES,
        path="flavorprofiles",
        key="flavorprofile",
        plural="flavorprofiles",
        operation="FlavorProfile",
        noun="a flavor profile",
        nouns="flavor profiles",
        out=s.FlavorProfileOut,
        body=s.FlavorProfileBody,
        listing=s.FlavorProfileList,
        create_body=s.FlavorProfileCreateBody,
        update_body=s.FlavorProfileUpdateBody,
        path_id="flavorprofile_id",
        projects_read=False,
    ),
    DefinitionRoutes(
        FLAVORS,
        path="flavors",
        key="flavor",
        plural="flavors",
        operation="Flavor",
        noun="a flavor",
        nouns="flavors",
        out=s.FlavorOut,
        body=s.FlavorBody,
        listing=s.FlavorList,
        create_body=s.FlavorCreateBody,
        update_body=s.FlavorUpdateBody,
        path_id="flavor_id",
        projects_read=True,
    ),
    DefinitionRoutes(
        AVAILABILITY_ZONE_PROFILES,
        path="availabilityzoneprofiles",
        key="availability_zone_profile",
        plural="availability_zone_profiles",
        operation="AvailabilityZoneProfile",
        noun="an availability zone profile",
        nouns="availability zone profiles",
        out=s.AvailabilityZoneProfileOut,
        body=s.AvailabilityZoneProfileBody,
        listing=s.AvailabilityZoneProfileList,
        create_body=s.AvailabilityZoneProfileCreateBody,
        update_body=s.AvailabilityZoneProfileUpdateBody,
        path_id="availability_zone_profile_id",
        projects_read=False,
    ),
    DefinitionRoutes(
        AVAILABILITY_ZONES,
        path="availabilityzones",
        key="availability_zone",
        plural="availability_zones",
        operation="AvailabilityZone",
        noun="an availability zone",
        nouns="availability zones",
        out=s.AvailabilityZoneOut,
        body=s.AvailabilityZoneBody,
        listing=s.AvailabilityZoneList,
        create_body=s.AvailabilityZoneCreateBody,
        update_body=s.AvailabilityZoneUpdateBody,
        path_id="availability_zone_name",
        projects_read=True,
    ),
)
"""The four kinds, as Octavia's API has them."""


def definition_router(routes: DefinitionRoutes, service: ServiceOf) -> APIRouter:
    """The routes of one kind of definition; ``service`` finds its service in the runtime."""
    d = routes
    router = APIRouter(prefix=f"/lbaas/{d.path}", tags=[d.path])
    one = f"/{{{d.path_id}}}"
    key_type: type = UUID if d.definition.key == "id" else str
    reader = request_context if d.projects_read else admin_context

    def shown(obj: Any) -> BaseModel:
        return d.body(**{d.key: d.out.model_validate(obj, from_attributes=True)})

    async def create(**args: Any) -> BaseModel:
        obj = await service(args["runtime"]).create(getattr(args["body"], d.key))
        where = f"/v2/lbaas/{d.path}/{getattr(obj, d.definition.key)}"
        args["response"].headers["Location"] = absolute_url(args["request"], where)
        return shown(obj)

    async def list_(**args: Any) -> JSONResponse:
        query: ListQuery = args["query"]
        page = await service(args["runtime"]).page(query)
        bodies = [d.out.model_validate(obj, from_attributes=True) for obj in page.items]
        return page_response(args["request"], query, d.plural, page, bodies)

    async def get(**args: Any) -> BaseModel:
        return shown(await service(args["runtime"]).get(args["key"]))

    async def update(**args: Any) -> BaseModel:
        body = getattr(args["body"], d.key)
        return shown(await service(args["runtime"]).update(args["key"], body))

    async def delete(**args: Any) -> None:
        await service(args["runtime"]).delete(args["key"])

    def signed(
        endpoint: Endpoint,
        *,
        keyed: bool = False,
        body: type[BaseModel] | None = None,
        **deps: tuple[Any, Any],
    ) -> Endpoint:
        """``endpoint`` with the signature FastAPI reads: the path's key if ``keyed``,
        ``body``, each of ``deps`` (name: annotation and default), the request, the response
        and the runtime."""
        keyword = inspect.Parameter.KEYWORD_ONLY
        parameters = [
            inspect.Parameter(name, keyword, annotation=annotation, default=default)
            for name, (annotation, default) in deps.items()
        ]
        if body is not None:
            parameters.insert(0, inspect.Parameter("body", keyword, annotation=body))
        if keyed:
            parameters.insert(0, inspect.Parameter(d.path_id, keyword, annotation=key_type))
        parameters += [
            inspect.Parameter("request", keyword, annotation=Request),
            inspect.Parameter("response", keyword, annotation=Response),
            inspect.Parameter("runtime", keyword, default=Depends(get_runtime)),
        ]

        async def call(**args: Any) -> Any:
            if d.path_id in args:
                args["key"] = args.pop(d.path_id)
            return await endpoint(**args)

        call.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
        call.__name__ = endpoint.__name__
        return call

    admin = (Any, Depends(admin_context))
    read = (Any, Depends(reader))
    changed = problems(*CHECKED, 400, 403, 404, 409, 413)
    router.add_api_route(
        "",
        signed(create, body=d.create_body, ctx=admin),
        methods=["POST"],
        status_code=status.HTTP_201_CREATED,
        operation_id=f"create{d.operation}",
        summary=f"Create {d.noun} (admin)",
        response_model=d.body,
        responses=problems(*CHECKED, 400, 403, 404, 409, 413, 422),
        openapi_extra=IDEMPOTENCY_KEY,
    )
    router.add_api_route(
        "",
        signed(list_, ctx=read, query=(ListQuery, Depends(list_query_dependency()))),
        methods=["GET"],
        operation_id=f"list{d.operation}s",
        summary=f"List {d.nouns}",
        response_model=d.listing,
        responses=problems(*CHECKED, 400, 403, 404),
        openapi_extra=list_parameters(
            d.definition.filters,
            frozenset(d.definition.filters) - {"id"},
            tag_filters=False,
        ),
    )
    router.add_api_route(
        one,
        signed(get, ctx=read, keyed=True),
        methods=["GET"],
        operation_id=f"get{d.operation}",
        summary=f"Show {d.noun}",
        response_model=d.body,
        responses=problems(*CHECKED, 400, 403, 404),
    )
    router.add_api_route(
        one,
        signed(update, body=d.update_body, ctx=admin, keyed=True),
        methods=["PUT"],
        operation_id=f"update{d.operation}",
        summary=f"Update {d.noun} (admin)",
        response_model=d.body,
        responses=changed,
    )
    router.add_api_route(
        one,
        signed(delete, ctx=admin, keyed=True),
        methods=["DELETE"],
        status_code=status.HTTP_204_NO_CONTENT,
        operation_id=f"delete{d.operation}",
        summary=f"Delete {d.noun} nothing uses (admin)",
        responses={204: {"description": "Deleted"}, **changed},
    )
    return router
