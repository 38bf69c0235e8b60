"""The reaper: objects ``PENDING_*`` longer than the pending timeout become ``ERROR``.

Their operation becomes ``TIMED_OUT``; a late result of the same generation
still heals them (see ``services.results``). Rows are taken with
``FOR UPDATE SKIP LOCKED`` so every API replica can run a reaper.
"""

import asyncio
import logging
from datetime import timedelta

from prometheus_client import Gauge
from sqlalchemy import and_, func, select

from api_service.db.engine import SessionFactory
from api_service.db.models import LoadBalancer, Operation
from api_service.db.notifications import notify_settled
from api_service.services.tree import apply_timeout, load_tree
from shared.status import PENDING_STATUSES, OperationStatus

log = logging.getLogger(__name__)

_BATCH = 500


async def reap_pending(sessions: SessionFactory, timeout: float) -> int:
    """Time out one batch of stuck load balancers; return how many."""
    cutoff = func.now() - timedelta(seconds=timeout)
    query = (
        select(LoadBalancer, Operation)
        .join(
            Operation,
            and_(
                Operation.loadbalancer_id == LoadBalancer.id,
                Operation.generation == LoadBalancer.generation,
            ),
        )
        .where(
            LoadBalancer.provisioning_status.in_([s.value for s in PENDING_STATUSES]),
            Operation.status == OperationStatus.PENDING.value,
            Operation.created_at < cutoff,
        )
        .limit(_BATCH)
        .with_for_update(of=LoadBalancer, skip_locked=True)
    )
    async with sessions.begin() as session:
        rows = (await session.execute(query)).all()
        for lb, operation in rows:
            reason = (
                f"No result from the agent within {timeout:g} s while {lb.provisioning_status} "
                f"(operation {operation.id}); the change may still complete."
            )
            log.warning(reason, extra={"op_id": operation.id, "loadbalancer_id": lb.id})
            apply_timeout(await load_tree(session, lb), reason)
            await notify_settled(session, lb.id)
            operation.status = OperationStatus.TIMED_OUT.value
            operation.error = reason
    return len(rows)


async def count_pending(sessions: SessionFactory) -> int:
    async with sessions() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(LoadBalancer)
            .where(LoadBalancer.provisioning_status.in_([s.value for s in PENDING_STATUSES]))
        )
    return count or 0


async def run_reaper(
    sessions: SessionFactory, timeout: float, interval: float, pending: Gauge
) -> None:
    while True:
        try:
            while await reap_pending(sessions, timeout) == _BATCH:
                pass
            pending.set(await count_pending(sessions))
        except Exception:
            log.exception("reaper pass failed")
        await asyncio.sleep(interval)
