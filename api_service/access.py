"""Who is asking: a token's project and role, and what they may see and do.

Roles follow Octavia's RBAC, simplified: ``observer`` reads its project,
``member`` reads and writes it, ``global_observer`` reads every project,
``admin`` does everything (devices, quotas, tokens, placement, failover).
"""

from dataclasses import dataclass
from uuid import UUID

from api_service.services.tokens import Role


@dataclass(frozen=True)
class RequestContext:
    project_id: str
    role: Role
    token_id: UUID | None = None
    token_name: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @property
    def reads_all(self) -> bool:
        return self.role in (Role.ADMIN, Role.GLOBAL_OBSERVER)

    @property
    def may_write(self) -> bool:
        return self.role in (Role.ADMIN, Role.MEMBER)

    def owns(self, project_id: str) -> bool:
        """Whether the caller may see objects of ``project_id`` (others are 404 to it)."""
        return self.reads_all or project_id == self.project_id
