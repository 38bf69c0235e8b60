"""Who is asking: the project and role every service call is scoped by.

Until tokens exist, every caller is an admin acting in the project named by the
``X-Project-Id`` header (``default`` when absent).
"""

import re
from dataclasses import dataclass

from fastapi import Header
from starlette.types import Scope

from api_service.problems import invalid

DEFAULT_PROJECT = "default"
_PROJECT = re.compile(r"\A[A-Za-z0-9_.-]{1,255}\Z")


@dataclass(frozen=True)
class RequestContext:
    project_id: str
    is_admin: bool

    def owns(self, project_id: str) -> bool:
        return self.is_admin or project_id == self.project_id


def request_context(x_project_id: str = Header(default=DEFAULT_PROJECT)) -> RequestContext:
    if not _PROJECT.fullmatch(x_project_id):
        raise invalid("X-Project-Id", "must be 1-255 characters of A-Z a-z 0-9 _ . -")
    return RequestContext(project_id=x_project_id, is_admin=True)


def project_of_scope(scope: Scope) -> str:
    """The caller's project, read from the raw request (for middleware)."""
    for name, value in scope.get("headers", ()):
        if name == b"x-project-id":
            return str(value.decode("latin-1"))
    return DEFAULT_PROJECT
