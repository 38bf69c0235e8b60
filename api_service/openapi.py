"""The OpenAPI document as published, and the pages that show it.

- The document is FastAPI's (with the problem answers of ``problems.py``) and an example for
  every request body (``REQUEST_EXAMPLES``, by operation id).
- ``/docs`` is Swagger UI with its assets served from the ``swagger-ui-bundle-v2`` package:
  it needs no internet access.
- ``published()`` is the document's text as ``lbaas-manage openapi`` writes it and as
  ``docs/openapi.json`` holds it.
"""

import json
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
ASSETS_URL = "/docs/assets"
SWAGGER_UI = Path(str(swagger_ui_path))
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
"""What the page loads, from the package's copy of Swagger UI (and nothing else is served)."""


def description(change_answers: str) -> str:
    """The document's description: what every operation has in common; changes answer as
    ``change_answers`` says (``LBAAS_STATUS_CODES``)."""
    return (
        f"Every change is asynchronous: answered {change_answers}, with the object PENDING_*, "
        "a Location to poll (or `wait_for=ACTIVE` on it, a long poll) and an X-Operation-Id to "
        "follow. Errors are application/problem+json (application/json to a client whose "
        "Accept prefers it). Authenticate with X-Auth-Token (or Authorization: Bearer)."
    )


REGENERATE = "lbaas-manage openapi docs/openapi.json"
"""How to write docs/openapi.json again after a change of the document."""

# Example ids: what the answers of earlier calls give (a load balancer, listener, pool, ...).
_LB = "5f0b1c3e-2a4d-4e8f-9b6a-7c1d2e3f4a5b"
_LISTENER = "8e2d4c6a-1b3f-4a5e-8c7d-9f0e1a2b3c4d"
_POOL = "3a9c7e5b-4d2f-4b1a-9e8c-6d5f4e3a2b1c"
_NETWORK = "c4b3a2f1-6e5d-4c8b-a7f6-1e2d3c4b5a69"
_SUBNET = "e1f2a3b4-c5d6-4e7f-8a9b-0c1d2e3f4a5b"

REQUEST_EXAMPLES: dict[str, dict[str, Any]] = {
    "createLoadBalancer": {
        "loadbalancer": {
            "name": "web",
            "description": "The web tier",
            "tags": ["production"],
            "listeners": [
                {
                    "name": "http",
                    "protocol": "HTTP",
                    "protocol_port": 8080,
                    "insert_headers": {"X-Forwarded-For": "true"},
                    "default_pool": {
                        "name": "web-servers",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": [
                            {"address": "127.0.0.1", "protocol_port": 8001},
                            {"address": "127.0.0.1", "protocol_port": 8002, "weight": 2},
                        ],
                        "healthmonitor": {
                            "type": "HTTP",
                            "delay": 5,
                            "timeout": 3,
                            "max_retries": 3,
                            "url_path": "/healthz",
                            "expected_codes": "200",
                        },
                    },
                }
            ],
        }
    },
    "updateLoadBalancer": {
        "loadbalancer": {"description": "The web tier (blue)", "tags": ["production", "blue"]}
    },
    "createListener": {
        "listener": {
            "loadbalancer_id": _LB,
            "name": "http",
            "protocol": "HTTP",
            "protocol_port": 8080,
            "connection_limit": 10000,
            "timeout_client_data": 50000,
            "insert_headers": {"X-Forwarded-For": "true", "X-Forwarded-Proto": "true"},
            "allowed_cidrs": ["192.0.2.0/24", "2001:db8::/32"],
        }
    },
    "updateListener": {"listener": {"connection_limit": 20000, "default_pool_id": _POOL}},
    "createPool": {
        "pool": {
            "listener_id": _LISTENER,
            "name": "web-servers",
            "protocol": "HTTP",
            "lb_algorithm": "LEAST_CONNECTIONS",
            "session_persistence": {"type": "APP_COOKIE", "cookie_name": "SESSIONID"},
        }
    },
    "updatePool": {"pool": {"lb_algorithm": "ROUND_ROBIN", "session_persistence": None}},
    "createMember": {
        "member": {"name": "web-1", "address": "127.0.0.1", "protocol_port": 8001, "weight": 1}
    },
    "updateMember": {"member": {"weight": 0}},
    "replaceMembers": {
        "members": [
            {"name": "web-1", "address": "127.0.0.1", "protocol_port": 8001},
            {"name": "web-2", "address": "127.0.0.1", "protocol_port": 8002, "backup": True},
        ]
    },
    "createHealthMonitor": {
        "healthmonitor": {
            "pool_id": _POOL,
            "type": "HTTP",
            "delay": 5,
            "timeout": 3,
            "max_retries": 3,
            "max_retries_down": 3,
            "http_method": "GET",
            "url_path": "/healthz",
            "expected_codes": "200-204",
        }
    },
    "updateHealthMonitor": {"healthmonitor": {"delay": 10, "timeout": 5}},
    "createL7Policy": {
        "l7policy": {
            "listener_id": _LISTENER,
            "name": "api",
            "action": "REDIRECT_TO_URL",
            "redirect_url": "https://api.example.com/",
            "redirect_http_code": 301,
            "position": 1,
            "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/api"}],
        }
    },
    "updateL7Policy": {"l7policy": {"position": 2}},
    "createL7Rule": {
        "rule": {"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "www.example.com"}
    },
    "updateL7Rule": {"rule": {"invert": True}},
    "createDevice": {
        "device": {
            "name": "appliance-1",
            "driver": "sim",
            "management_url": "sim://appliance-1",
            "vip_cidr": "198.51.100.0/24",
            "capacity": 100,
        }
    },
    "updateDevice": {"device": {"capacity": 200, "enabled": True}},
    "createNetwork": {"network": {"name": "web-vips-net"}},
    "createSubnet": {
        "subnet": {
            "network_id": _NETWORK,
            "name": "web-vips",
            "cidr": "198.51.100.0/24",
            "gateway_ip": "198.51.100.1",
            "allocation_pools": [{"start": "198.51.100.10", "end": "198.51.100.200"}],
        }
    },
    "createPort": {
        "port": {
            "network_id": _NETWORK,
            "fixed_ips": [{"subnet_id": _SUBNET, "ip_address": "198.51.100.50"}],
            "project_id": "web",
            "name": "web-vip",
        }
    },
    "createFlavorProfile": {
        "flavorprofile": {
            "name": "gold-devices",
            "provider_name": "haproxy",
            "flavor_data": '{"device_group": "gold"}',
        }
    },
    "updateFlavorProfile": {"flavorprofile": {"name": "gold-devices-2"}},
    "createFlavor": {
        "flavor": {
            "name": "gold",
            "description": "On the gold devices",
            "enabled": True,
            "flavor_profile_id": "4a7e9c2d-1b3f-4e5a-8c6d-2f1e0d9c8b7a",
        }
    },
    "updateFlavor": {"flavor": {"enabled": False}},
    "createAvailabilityZoneProfile": {
        "availability_zone_profile": {
            "name": "rack-1-devices",
            "provider_name": "haproxy",
            "availability_zone_data": '{"device_group": "rack-1"}',
        }
    },
    "updateAvailabilityZoneProfile": {"availability_zone_profile": {"name": "rack-1"}},
    "createAvailabilityZone": {
        "availability_zone": {
            "name": "rack-1",
            "description": "The devices of rack 1",
            "availability_zone_profile_id": "6b1d3f5e-7a9c-4b2d-8e0f-1a3c5e7b9d2f",
        }
    },
    "updateAvailabilityZone": {"availability_zone": {"description": "Rack 1"}},
    "updateQuota": {"quota": {"loadbalancer": 10, "listener": 50, "member": 500}},
    "createToken": {
        "token": {"name": "ci", "project_id": "web", "role": "member", "expires_in": 2592000}
    },
    "createIdentityToken": {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {
                    "id": "0f8e2b6c-5d4a-4c3b-9a1e-7d6c5b4a3f2e",
                    "secret": "the-token-value-shown-once-by-createToken",
                },
            }
        }
    },
}
"""A request body for every operation that takes one, by operation id."""


def add_examples(document: dict[str, Any]) -> None:
    """Give every request body of ``document`` its example (``REQUEST_EXAMPLES``)."""
    for path in document.get("paths", {}).values():
        for operation in path.values():
            example = REQUEST_EXAMPLES.get(operation.get("operationId", ""))
            body = operation.get("requestBody")
            if body is None or example is None:
                continue
            for media in body.get("content", {}).values():
                media["example"] = example


def install(app: FastAPI) -> None:
    """The document's examples, and the offline docs pages (``/docs``).

    ``app`` is made with ``docs_url=None``: these routes replace FastAPI's, whose page loads
    Swagger UI from a CDN.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = build()
        add_examples(document)
        return document

    app.openapi = openapi  # type: ignore[method-assign]

    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + (app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
            oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
        )

    async def oauth2_redirect(_: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    async def asset(request: Request) -> FileResponse:
        name = request.path_params["name"]
        if name not in ASSETS:
            raise HTTPException(404, f"No asset {name!r}.")
        return FileResponse(SWAGGER_UI / name, media_type=ASSETS[name])

    app.add_route(DOCS_URL, swagger_ui, include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT_URL, oauth2_redirect, include_in_schema=False)
    app.add_route(ASSETS_URL + "/{name}", asset, include_in_schema=False)


def document_text(document: dict[str, Any]) -> str:
    """The document as docs/openapi.json holds it."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def published() -> str:
    """The text of the document this code serves: no database, broker or settings needed
    (an application is made without reading any; they only matter once it starts)."""
    from api_service.app import create_app
    from api_service.settings import ApiSettings

    return document_text(create_app(ApiSettings.model_construct()).openapi())
