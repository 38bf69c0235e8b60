"""Quotas: per-project limits on each kind of object, enforced inside the creating transaction.

A create that adds only kinds the project may have without limit takes no lock.
Otherwise the project's quota row is locked, then usage is counted with the new
objects already written, so concurrent creates of one project are counted one
after the other and never exceed the limit. Changes check quotas last before
their commit, so the lock is held briefly. A limit binds the creates that begin
after it is set: one already past its unlocked read when the limit commits is
not counted against it.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CTE, Row, Select, bindparam, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.engine import SessionFactory
from api_service.db.models import (
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancer,
    Member,
    Pool,
    Quota,
    TreeObject,
)
from api_service.errors import QuotaExceeded

KINDS: dict[str, type[TreeObject]] = {
    "loadbalancer": LoadBalancer,
    "listener": Listener,
    "pool": Pool,
    "member": Member,
    "healthmonitor": HealthMonitor,
    "l7policy": L7Policy,
    "l7rule": L7Rule,
}
UNLIMITED = -1


def kind_of(obj: TreeObject) -> str:
    return next(kind for kind, model in KINDS.items() if isinstance(obj, model))


@dataclass(frozen=True)
class QuotaService:
    sessions: SessionFactory
    defaults: dict[str, int]

    async def effective(self, project_id: str) -> dict[str, int]:
        async with self.sessions() as session:
            row = await session.get(Quota, project_id)
        return self._limits(row)

    async def projects(self) -> list[tuple[str, dict[str, int]]]:
        async with self.sessions() as session:
            rows = await session.scalars(select(Quota).order_by(Quota.project_id))
            return [(row.project_id, self._limits(row)) for row in rows]

    async def set(self, project_id: str, limits: dict[str, int | None]) -> dict[str, int]:
        async with self.sessions.begin() as session:
            row = await _locked_row(session, project_id)
            for kind, limit in limits.items():
                setattr(row, kind, limit)
        return self._limits(row)

    async def reset(self, project_id: str) -> None:
        async with self.sessions.begin() as session:
            row = await session.get(Quota, project_id)
            if row is not None:
                await session.delete(row)

    async def enforce(
        self,
        session: AsyncSession,
        project_id: str,
        added: Counter[str],
        row: Row[Any],
    ) -> None:
        """Refuse (403) if the objects just written take the project over a limit; ``row`` has
        the project's quota row (:func:`with_quota_row`), read unlocked by the statement that
        wrote the change's operation."""
        if not added:
            return
        limits = self._limits(row)
        if all(limits[kind] == UNLIMITED for kind in added):
            return
        limits = self._limits(await _locked_row(session, project_id))
        await session.flush()
        for kind, count in added.items():
            limit = limits[kind]
            if limit == UNLIMITED:
                continue
            model = KINDS[kind]
            used = await session.scalar(
                select(func.count())
                .select_from(model)
                .where(model.project_id == project_id, ~model.deleting)
            )
            if (used or 0) > limit:
                raise QuotaExceeded(
                    f"Quota exceeded for {kind}: project {project_id} may have {limit}, "
                    f"has {(used or 0) - count} and asked for {count} more.",
                )

    def _limits(self, row: Quota | Row[Any] | None) -> dict[str, int]:
        return {
            kind: value
            if row is not None and (value := getattr(row, kind)) is not None
            else self.defaults[kind]
            for kind in KINDS
        }


def with_quota_row(row: CTE) -> Select[Any]:
    """The columns of the one-row ``row`` and, beside them, those of the quota row of the
    project bound as ``project_id`` (NULLs when it has none: every limit is the default)."""
    return select(*row.c, *Quota.__table__.columns).select_from(
        row.outerjoin(Quota, Quota.project_id == bindparam("project_id"))
    )


async def _locked_row(session: AsyncSession, project_id: str) -> Quota:
    await session.execute(insert(Quota).values(project_id=project_id).on_conflict_do_nothing())
    row = await session.scalar(
        select(Quota)
        .where(Quota.project_id == project_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # a limit set since it was read unlocked
    )
    assert row is not None
    return row
