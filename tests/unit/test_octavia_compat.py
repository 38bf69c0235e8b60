"""Octavia compatibility the application shows without a database: openstacksdk's filter names
in the OpenAPI document, what an update may send as null, and the request id and problem body
of an unexpected error."""

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openstack.load_balancer.v2 import (
    health_monitor,
    l7_policy,
    l7_rule,
    listener,
    load_balancer,
    member,
    pool,
)

from api_service.app import create_app
from api_service.resources.catalog import RESOURCES
from api_service.settings import ApiSettings

SDK_LISTS = {
    "listLoadBalancers": load_balancer.LoadBalancer,
    "listListeners": listener.Listener,
    "listPools": pool.Pool,
    "listMembers": member.Member,
    "listHealthMonitors": health_monitor.HealthMonitor,
    "listL7Policies": l7_policy.L7Policy,
    "listL7Rules": l7_rule.L7Rule,
}
WITHOUT = frozenset(
    {
        # TLS termination, which the service does not do
        "default_tls_container_ref",
        "sni_container_refs",
        "tls_enabled",
        "tls_ciphers",
        "tls_versions",
        "alpn_protocols",
        "ca_tls_container_ref",
        "crl_container_ref",
        "hsts_max_age",
        "hsts_include_subdomains",
        "hsts_preload",
        # Nova and Neutron objects it has no counterpart of
        "availability_zone",
        "vip_qos_policy_id",
        "flavor_id",
        "vip_port_id",
        # objects, not values
        "insert_headers",
        "allowed_cidrs",
    }
)
"""Filters openstacksdk may send that name fields this service does not have: 400, naming
the filters there are."""


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(ApiSettings.model_construct())


@pytest.mark.parametrize("operation_id", sorted(SDK_LISTS))
def test_openstacksdk_filter_names_are_list_parameters(app: FastAPI, operation_id: str) -> None:
    operations = {
        operation["operationId"]: operation
        for path in app.openapi()["paths"].values()
        for operation in path.values()
    }
    parameters = {p["name"] for p in operations[operation_id]["parameters"] if p["in"] == "query"}
    sent: Any = SDK_LISTS[operation_id]._query_mapping._mapping
    assert set(sent.values()) - WITHOUT <= parameters


async def test_an_unexpected_error_is_a_problem_with_the_request_id(app: FastAPI) -> None:
    """The application is never started: the token check meets no runtime."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://lbaas") as http:
        answer = await http.get(
            "/v2/lbaas/loadbalancers",
            headers={"X-Auth-Token": "t" * 40, "Accept": "application/json"},
        )
    assert answer.status_code == 500
    assert answer.headers["x-openstack-request-id"].startswith("req-")
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["detail"] == "An unexpected error occurred."


@pytest.mark.parametrize("resource", RESOURCES, ids=[r.key for r in RESOURCES])
def test_an_update_may_send_null_for_fields_with_a_default(resource: Any) -> None:
    """The document says which fields of an update may be null: those a null resets."""
    update = resource.update_body.model_fields[resource.key].annotation
    properties = update.model_json_schema()["properties"]
    nullable = {
        name
        for name, schema in properties.items()
        if schema.get("type") == "null"
        or any(branch.get("type") == "null" for branch in schema.get("anyOf", []))
    }
    assert nullable == set(properties) & set(resource.all_defaults)
