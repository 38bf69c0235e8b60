"""Operations (extension): read-only views of every asynchronous change, the audit trail."""

from dataclasses import dataclass
from uuid import UUID

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.listing import ListQuery, Page, fetch_page
from api_service.db.models import Operation
from api_service.errors import NotFound
from api_service.services.resource import Filters

OPERATION_FILTERS: Filters = {
    "id": UUID,
    "project_id": str,
    "loadbalancer_id": UUID,
    "target_type": str,
    "target_id": UUID,
    "action": str,
    "status": str,
}
"""What a list of operations may be filtered by (equality, as every list)."""
OPERATION_SORTS = frozenset({"created_at", "id"})
"""What it may be sorted by: the order of its indexes (ix_operations_created, _project)."""
NEWEST_FIRST: tuple[tuple[str, bool], ...] = (("created_at", False), ("id", False))
"""The order of a list that asks for none: the audit trail's newest entries first."""


@dataclass(frozen=True)
class OperationService:
    sessions: SessionFactory

    async def get(self, ctx: RequestContext, op_id: UUID) -> Operation:
        async with self.sessions() as session:
            operation = await session.get(Operation, op_id)
        if operation is None or not ctx.owns(operation.project_id):
            raise NotFound("Operation", op_id)
        return operation

    async def page(self, ctx: RequestContext, query: ListQuery) -> Page[Operation]:
        """One page of the operations the caller may see (its project's, or every one)."""
        scope = None if ctx.reads_all else Operation.project_id == ctx.project_id
        async with self.sessions() as session:
            return await fetch_page(
                session,
                Operation,
                query,
                scope=scope,
                filterable=OPERATION_FILTERS,
                sortable=OPERATION_SORTS,
            )
