"""The OpenAPI document: the committed copy is current, and what client generators need of it.

docs/openapi.json is what ``lbaas-manage openapi`` writes; every operation is named, tagged
and summarised, every request body has an example that the service accepts, every problem
answer is a Problem, and no schema takes a form that client generators turn into ``Any``,
into a class per branch or into a broken enum.
"""

import difflib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import pytest
from fastapi import FastAPI

from api_service.app import create_app
from api_service.openapi import (
    ASSETS,
    REGENERATE,
    REQUEST_EXAMPLES,
    SWAGGER_UI,
    document_text,
    published,
)
from api_service.schemas.fields import RequestBody
from api_service.settings import ApiSettings

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
PROBLEM = {"$ref": "#/components/schemas/Problem"}
TREE_PATHS = re.compile(r"^/v2/lbaas/(loadbalancers|listeners|pools|healthmonitors|l7policies)")
"""The paths of the load balancer tree: their changes are asynchronous operations."""


@pytest.fixture(scope="module")
def app() -> FastAPI:
    """An application that is never started: it needs no settings."""
    return create_app(ApiSettings.model_construct())


@pytest.fixture(scope="module")
def document(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", operation


def test_the_committed_document_is_the_one_the_code_produces() -> None:
    produced = published()
    committed = COMMITTED.read_text(encoding="utf-8") if COMMITTED.exists() else ""
    if committed != produced:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    produced.splitlines(keepends=True),
                    "docs/openapi.json (committed)",
                    "the code's document",
                )
            )[:60]
        )
        pytest.fail(
            f"docs/openapi.json is not the document the code produces: run `{REGENERATE}` "
            f"(or `.venv/bin/{REGENERATE}`) and commit it.\n{diff}"
        )


def test_the_document_does_not_depend_on_settings() -> None:
    settings = ApiSettings.model_construct(default_provider="noop", rate_limit=3, quota_pool=7)
    assert document_text(create_app(settings).openapi()) == published()


def test_every_operation_has_an_id_a_tag_and_a_summary(document: dict[str, Any]) -> None:
    seen: set[str] = set()
    for where, operation in _operations(document):
        assert operation.get("operationId"), where
        assert operation["operationId"] not in seen, where
        seen.add(operation["operationId"])
        assert operation.get("tags"), where
        assert operation.get("summary"), where


def test_every_request_body_has_an_example_the_service_accepts(document: dict[str, Any]) -> None:
    bodies = {model.__name__: model for model in _subclasses(RequestBody)}
    with_body = set()
    for where, operation in _operations(document):
        if "requestBody" not in operation:
            continue
        with_body.add(operation["operationId"])
        media = operation["requestBody"]["content"]["application/json"]
        assert "example" in media, f"{where}: add its example to REQUEST_EXAMPLES"
        example = media["example"]
        # The document says it is valid ...
        schema = {**media["schema"], "components": document["components"]}
        errors = [e.message for e in jsonschema_rs.validator_for(schema).iter_errors(example)]
        assert not errors, (where, errors)
        # ... and so does the model the service validates it with.
        bodies[media["schema"]["$ref"].rsplit("/", 1)[1]].model_validate(example)
    assert with_body == set(REQUEST_EXAMPLES), "REQUEST_EXAMPLES names unknown operations"


def _subclasses(cls: type[RequestBody]) -> Iterator[type[RequestBody]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_answer_has_its_schema_and_problems_are_problems(document: dict[str, Any]) -> None:
    for where, operation in _operations(document):
        for status, answer in operation["responses"].items():
            content = answer.get("content")
            if status == "204" or (status, where) == (
                "202",
                "DELETE /v2/lbaas/quotas/{project_id}",
            ):
                assert not content, (where, status)  # no body
                continue
            assert content, (where, status)
            assert all(media.get("schema") for media in content.values()), (where, status)
            if status[0] in "45":
                assert content == {"application/problem+json": {"schema": PROBLEM}}, (
                    where,
                    status,
                )
                if status in ("429", "503"):
                    assert "Retry-After" in answer["headers"], (where, status)
            if status == "202" and TREE_PATHS.match(where.split(" ", 1)[1]):
                headers = answer["headers"]
                for name in ("Location", "Retry-After", "X-Operation-Id", "ETag"):
                    assert headers[name]["required"], (where, name)
            one = where.startswith("GET") and where.endswith("}")
            if status == "200" and one and TREE_PATHS.match(where[4:]):
                assert answer["headers"]["ETag"]["required"], where


def _schemas(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema in ``node`` (a schema or a part of the document), with where it is."""
    if isinstance(node, dict):
        if "type" in node or "$ref" in node or "anyOf" in node or "enum" in node:
            yield where, node
        for key, value in node.items():
            # (Generators ignore if/then/else, which only add constraints.)
            if key not in ("example", "examples", "default", "if", "then", "else"):
                yield from _schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _schemas(value, f"{where}/{index}")


def _member_name(value: object) -> str:
    """How openapi-python-client names an enum member (before it makes names unique)."""
    return re.sub(r"\W+", "_", str(value)).upper()


def test_no_schema_takes_a_form_client_generators_cannot_type(document: dict[str, Any]) -> None:
    for where, schema in _schemas(document, "#"):
        if "enum" in schema:
            names = [_member_name(value) for value in schema["enum"]]
            assert len(names) == len(set(names)), f"{where}: enum members collide: {names}"
        if schema.get("type") == "object" or "properties" in schema:
            # "one of these fields" as an anyOf of partial objects: a class per branch.
            for keyword in ("anyOf", "oneOf", "allOf"):
                assert keyword not in schema, f"{where}: a {keyword} of object parts"
        for branch in schema.get("anyOf", []):
            # A branch without a type (only a format) is typed Any.
            assert {"type", "$ref", "anyOf", "oneOf"} & set(branch), (where, branch)


_ANSWER_ENUMS = {
    ("ListenerOut", "protocol"): "ListenerProtocol",
    ("PoolOut", "protocol"): "PoolProtocol",
    ("PoolOut", "lb_algorithm"): "LbAlgorithm",
    ("SessionPersistenceOut", "type"): "PersistenceType",
    ("HealthMonitorOut", "type"): "MonitorType",
    ("HealthMonitorOut", "http_method"): "HttpMethod",
    ("MonitorStatus", "type"): "MonitorType",
    ("L7PolicyOut", "action"): "L7Action",
    ("L7PolicyOut", "redirect_http_code"): "RedirectHttpCode",
    ("L7PolicyStatus", "action"): "L7Action",
    ("L7RuleOut", "type"): "RuleType",
    ("L7RuleOut", "compare_type"): "CompareType",
    ("RuleStatus", "type"): "RuleType",
    ("OperationOut", "status"): "OperationStatus",
    ("ListenerOut", "insert_headers"): "InsertHeaders",
}
"""Enums (and named types) of answers, besides the statuses every object has."""


def _refs(schema: dict[str, Any]) -> set[str]:
    """The components ``schema`` refers to, null aside."""
    branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
    return {b["$ref"].rsplit("/", 1)[1] for b in branches if "$ref" in b}


def test_answers_have_enums_addresses_and_typed_links(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    for (name, field), expected in _ANSWER_ENUMS.items():
        assert _refs(schemas[name]["properties"][field]) == {expected}, (name, field)
    statuses = {"provisioning_status": "ProvisioningStatus", "operating_status": "OperatingStatus"}
    counted = 0
    for name, schema in schemas.items():
        for field, value in schema.get("properties", {}).items():
            if field in statuses and not name.endswith(("Update", "Fields")):
                assert _refs(value) == {statuses[field]}, (name, field)
                counted += 1
            if field in ("address", "vip_address", "monitor_address"):
                branches = [b for b in value.get("anyOf", []) if b.get("type") != "null"]
                branch = branches[0] if len(branches) == 1 else value  # nullable, or not
                formats = [(b.get("type"), b.get("format")) for b in branch.get("anyOf", [])]
                assert formats == [("string", "ipv4"), ("string", "ipv6")], (name, field)
            if field.endswith("_links"):
                assert value["items"] == {"$ref": "#/components/schemas/PageLink"}, name
                counted += 1
    assert counted > 30, counted


async def test_the_docs_page_needs_no_internet(app: FastAPI) -> None:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://lbaas") as http:
        page = await http.get("/docs")
        assert page.status_code == 200
        urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", page.text)
        assert urls, page.text
        assert all(url.startswith("/") for url in urls), urls
        for name, media_type in ASSETS.items():
            asset = await http.get(f"/docs/assets/{name}")
            assert asset.status_code == 200, name
            assert asset.headers["content-type"].startswith(media_type), name
            assert asset.content == (SWAGGER_UI / name).read_bytes(), name
        assert (await http.get("/docs/assets/index.html")).status_code == 404
        assert (await http.get("/docs/assets/..%2Fswagger-ui.css")).status_code == 404
        redirect = await http.get("/docs/oauth2-redirect")
        assert redirect.status_code == 200
        served = await http.get("/openapi.json")
        assert json.loads(published()) == served.json()
