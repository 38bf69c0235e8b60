"""Who is asking: the project and role every service call is scoped by.

Until tokens exist, every caller is an admin acting in the project named by the
``X-Project-Id`` header (``default`` when absent).
"""

from dataclasses import dataclass

from fastapi import Header

DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class RequestContext:
    project_id: str
    is_admin: bool

    def owns(self, project_id: str) -> bool:
        return self.is_admin or project_id == self.project_id


def request_context(x_project_id: str = Header(default=DEFAULT_PROJECT)) -> RequestContext:
    return RequestContext(project_id=x_project_id, is_admin=True)
