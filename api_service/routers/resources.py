"""The five routes of every tree resource, made from its declaration.

``POST``, list, ``GET``, ``PUT`` and ``DELETE`` of a collection (nested under
its parent's path when the resource has one): 202 answers (or Octavia's codes:
``StatusCodes``) with their headers, ETags and ``If-Match``, long polls,
Octavia's list parameters, and how the OpenAPI document describes each of them
(operation ids, links, problems).
"""

import inspect
from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from api_service.access import RequestContext
from api_service.context import request_context, writer_context
from api_service.db.listing import ListQuery
from api_service.routers.http import (
    CHANGE_PROBLEMS,
    CREATE_PROBLEMS,
    IDEMPOTENCY_KEY,
    LIST_PROBLEMS,
    LongPoll,
    StatusCodes,
    accepted,
    accepted_responses,
    answered_with,
    change_answer,
    if_match_header,
    list_openapi,
    list_response,
    long_poll,
    read_responses,
    read_settled,
    settled,
    with_etag,
)
from api_service.routers.listing import list_query_dependency
from api_service.runtime import Runtime, get_runtime
from api_service.services.changes import Accepted
from api_service.services.resource import Resource, ResourceService

Endpoint = Callable[..., Awaitable[Any]]


ServiceOf = Callable[[Runtime], ResourceService[Any]]

UPDATE_DESCRIPTION = (
    "Fields left out stay as they are; a field sent as null goes back to its default (as "
    "Octavia's, and every CLI's unset, does); a required field cannot be null (400)."
)


def resource_router(resource: Resource[Any], service: ServiceOf, codes: StatusCodes) -> APIRouter:
    """The routes of ``resource``; ``service`` finds its service in the runtime; changes answer
    with ``codes``.

    No create route for a resource without ``new``, no delete route for one
    without ``delete``: they have routes of their own.
    """
    r = resource
    parent = r.parent
    prefix = f"/lbaas/{r.plural}"
    if parent is not None:
        prefix = f"/lbaas/{parent.path}/{{{parent.path_id}}}/{r.plural}"
    router = APIRouter(prefix=prefix, tags=[r.plural])
    body_ref = f"$response.body#/{r.key}"
    this = {f"path.{r.path_id}": f"{body_ref}/id"}
    if parent is not None:
        this[f"path.{parent.path_id}"] = f"$request.path.{parent.path_id}"
    settled_links = {
        f"Get{r.operation}": settled(
            f"get{r.operation}",
            "Wait until it is ACTIVE.",
            **{name.removeprefix("path."): value for name, value in this.items()},
        )
    }

    async def answer(
        request: Request,
        response: Response,
        change: Accepted,
        ctx: RequestContext,
        runtime: Runtime,
    ) -> Any:
        return await accepted_body(r, service(runtime), request, response, change, ctx)

    async def create(**args: Any) -> Any:
        runtime: Runtime = args["runtime"]
        body = getattr(args["body"], r.key)
        change = await service(runtime).create(args["ctx"], body, args.get("parent_id"))
        return await answer(args["request"], args["response"], change, args["ctx"], runtime)

    async def list_(**args: Any) -> JSONResponse:
        runtime: Runtime = args["runtime"]
        query: ListQuery = args["query"]
        page, rel = await service(runtime).page(args["ctx"], query, args.get("parent_id"))
        return list_response(args["request"], query, r.plural, page, rel, args["ctx"], r.out)

    async def get(**args: Any) -> Any:
        runtime: Runtime = args["runtime"]
        svc = service(runtime)
        poll: LongPoll = args["poll"]
        shown = await read_settled(
            runtime,
            poll,
            lambda: svc.shown(args["ctx"], args["obj_id"], args.get("parent_id")),
            lambda x: getattr(x.obj, "loadbalancer_id", x.obj.id),
        )
        with_etag(args["response"], shown.obj)
        return r.body(**{r.key: r.out(shown.obj, shown.related, args["ctx"])})

    async def update(**args: Any) -> Any:
        runtime: Runtime = args["runtime"]
        body = getattr(args["body"], r.key)
        change = await service(runtime).update(
            args["ctx"], args["obj_id"], body, args["if_match"], args.get("parent_id")
        )
        return await answer(args["request"], args["response"], change, args["ctx"], runtime)

    async def delete(**args: Any) -> Any:
        runtime: Runtime = args["runtime"]
        change = await service(runtime).delete(
            args["ctx"], args["obj_id"], args["if_match"], args.get("parent_id")
        )
        body = await answer(args["request"], args["response"], change, args["ctx"], runtime)
        return change_answer(codes.delete, args["response"], body)

    ids = {"parent_id": parent.path_id} if parent else {}
    one = {**ids, "obj_id": r.path_id}
    noun = r.summary
    if r.new is not None:
        router.add_api_route(
            "",
            _signed(create, ids, body=r.create_body, writer=True),
            methods=["POST"],
            status_code=codes.create,
            operation_id=f"create{r.operation}",
            summary=f"Create {noun} (asynchronous)",
            response_model=r.body,
            responses=accepted_responses(CREATE_PROBLEMS, settled_links, codes.create),
            openapi_extra=IDEMPOTENCY_KEY,
        )
    router.add_api_route(
        "",
        _signed(list_, ids, query=True),
        methods=["GET"],
        operation_id=f"list{r.operations}",
        summary=f"List {r.plural_summary}",
        response_model=r.listing,
        responses=LIST_PROBLEMS,
        openapi_extra=list_openapi(r.filters, r.sorts),
    )
    router.add_api_route(
        f"/{{{r.path_id}}}",
        _signed(get, one, poll=True),
        methods=["GET"],
        operation_id=f"get{r.operation}",
        summary=f"Show {noun}",
        response_model=r.body,
        responses=read_responses(dict(r.links)),
    )
    router.add_api_route(
        f"/{{{r.path_id}}}",
        _signed(update, one, body=r.update_body, writer=True, if_match=True),
        methods=["PUT"],
        status_code=codes.update,
        operation_id=f"update{r.operation}",
        summary=f"Update {noun} (asynchronous)",
        description=UPDATE_DESCRIPTION,
        response_model=r.body,
        responses=accepted_responses(CHANGE_PROBLEMS, settled_links, codes.update),
    )
    if r.delete is not None:
        router.add_api_route(
            f"/{{{r.path_id}}}",
            _signed(delete, one, writer=True, if_match=True),
            methods=["DELETE"],
            status_code=codes.delete,
            operation_id=f"delete{r.operation}",
            summary=f"Delete {noun} (asynchronous)",
            **answered_with(r.body, codes.delete),
            responses=accepted_responses(CHANGE_PROBLEMS, status=codes.delete),
        )
    return router


async def accepted_body(
    r: Resource[Any],
    service: ResourceService[Any],
    request: Request,
    response: Response,
    change: Accepted,
    ctx: RequestContext,
) -> Any:
    """A 202: its headers, and the object the change is about as the API shows it."""
    obj = change.target
    location = f"{r.plural}/{obj.id}"
    if r.parent is not None:
        location = f"{r.parent.path}/{getattr(obj, r.parent.column.key)}/{location}"
    accepted(request, response, location, change)
    return r.body(**{r.key: r.out(obj, await service.related(obj, change.created), ctx)})


def _signed(
    endpoint: Endpoint,
    path_ids: dict[str, str],
    *,
    body: type[Any] | None = None,
    writer: bool = False,
    if_match: bool = False,
    query: bool = False,
    poll: bool = False,
) -> Endpoint:
    """``endpoint`` (which takes ``**args``) with the signature FastAPI reads its inputs from.

    Path ids keep the names of the path (``pool_id``) and reach the endpoint
    under the generic names ``parent_id`` and ``obj_id``.
    """
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter(path, keyword, annotation=UUID) for path in path_ids.values()]
    if body is not None:
        parameters.append(inspect.Parameter("body", keyword, annotation=body))
    parameters += [
        inspect.Parameter("request", keyword, annotation=Request),
        inspect.Parameter("response", keyword, annotation=Response),
    ]
    if query:
        parameters.append(
            inspect.Parameter("query", keyword, default=Depends(list_query_dependency()))
        )
    if poll:
        parameters.append(inspect.Parameter("poll", keyword, default=Depends(long_poll)))
    if if_match:
        parameters.append(inspect.Parameter("if_match", keyword, default=Depends(if_match_header)))
    context = writer_context if writer else request_context
    parameters += [
        inspect.Parameter("ctx", keyword, default=Depends(context)),
        inspect.Parameter("runtime", keyword, default=Depends(get_runtime)),
    ]
    renamed = {path: generic for generic, path in path_ids.items()}

    async def call(**args: Any) -> Any:
        return await endpoint(**{renamed.get(name, name): value for name, value in args.items()})

    call.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    call.__name__ = endpoint.__name__
    return call
