"""OpenAPI links: how an answer's values feed the next call (documentation, no behaviour)."""

from typing import Any

Links = dict[str, dict[str, Any]]


def link(
    operation_id: str,
    description: str,
    parameters: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An OpenAPI link: how to call ``operation_id`` with what this answer holds."""
    return {
        "operationId": operation_id,
        "description": description,
        **({"parameters": parameters} if parameters else {}),
        **({"requestBody": body} if body else {}),
    }
