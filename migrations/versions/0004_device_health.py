"""HAProxy devices: a management secret, health reports, counters that survive reloads.

Counters arrive cumulative over an ``epoch`` of the device's instance; each
stats row keeps the last values seen (``seen_*``) to add only the difference.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CUMULATIVE = ("bytes_in", "bytes_out", "request_errors", "total_connections")


def _seen_columns() -> list[sa.Column[int]]:
    return [
        sa.Column(f"seen_{name}", sa.BigInteger(), nullable=False, server_default="0")
        for name in CUMULATIVE
    ]


def upgrade() -> None:
    op.add_column("devices", sa.Column("management_secret", sa.Text(), nullable=True))
    op.add_column(
        "devices", sa.Column("status_reported_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("devices", sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "loadbalancer_stats",
        sa.Column("epoch", sa.String(64), nullable=False, server_default=""),
    )
    for column in _seen_columns():
        op.add_column("loadbalancer_stats", column)
    op.create_table(
        "listener_stats",
        sa.Column("listener_id", sa.Uuid(), nullable=False),
        sa.Column("loadbalancer_id", sa.Uuid(), nullable=False),
        sa.Column("epoch", sa.String(64), nullable=False),
        sa.Column("active_connections", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in CUMULATIVE),
        *_seen_columns(),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["listener_id"], ["listeners.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["loadbalancer_id"], ["loadbalancers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("listener_id"),
    )
    op.create_index("ix_listener_stats_loadbalancer_id", "listener_stats", ["loadbalancer_id"])


def downgrade() -> None:
    op.drop_index("ix_listener_stats_loadbalancer_id", table_name="listener_stats")
    op.drop_table("listener_stats")
    for name in CUMULATIVE:
        op.drop_column("loadbalancer_stats", f"seen_{name}")
    op.drop_column("loadbalancer_stats", "epoch")
    op.drop_column("devices", "synced_at")
    op.drop_column("devices", "status_reported_at")
    op.drop_column("devices", "management_secret")
