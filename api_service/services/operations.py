"""Operations (extension): read-only views of every asynchronous change."""

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.models import Operation
from api_service.errors import NotFound


@dataclass(frozen=True)
class OperationService:
    sessions: SessionFactory

    async def get(self, ctx: RequestContext, op_id: UUID) -> Operation:
        async with self.sessions() as session:
            operation = await session.get(Operation, op_id)
        if operation is None or not ctx.owns(operation.project_id):
            raise NotFound("Operation", op_id)
        return operation

    async def list(
        self, ctx: RequestContext, loadbalancer_id: UUID | None, limit: int
    ) -> list[Operation]:
        query = select(Operation).order_by(Operation.created_at, Operation.id).limit(limit)
        if loadbalancer_id is not None:
            query = query.where(Operation.loadbalancer_id == loadbalancer_id)
        if not ctx.reads_all:
            query = query.where(Operation.project_id == ctx.project_id)
        async with self.sessions() as session:
            return list(await session.scalars(query))
