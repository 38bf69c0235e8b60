"""L7 policies and rules, and their quotas.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _tree_columns() -> list[sa.Column[object]]:
    """The columns every object of a load balancer's tree has (``db.models.TreeChild``)."""
    return [
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("provisioning_status", sa.String(16), nullable=False),
        sa.Column("operating_status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(255)), nullable=False),
        sa.Column("changed_generation", sa.BigInteger(), nullable=False),
        sa.Column("deleting", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "loadbalancer_id",
            sa.Uuid(),
            sa.ForeignKey("loadbalancers.id", ondelete="CASCADE"),
            nullable=False,
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "l7policies",
        *_tree_columns(),
        sa.Column(
            "listener_id",
            sa.Uuid(),
            sa.ForeignKey("listeners.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column(
            "redirect_pool_id",
            sa.Uuid(),
            sa.ForeignKey("pools.id"),
            nullable=True,
        ),
        sa.Column("redirect_url", sa.String(2048), nullable=True),
        sa.Column("redirect_prefix", sa.String(2048), nullable=True),
        sa.Column("redirect_http_code", sa.Integer(), nullable=True),
    )
    op.create_table(
        "l7rules",
        *_tree_columns(),
        sa.Column(
            "l7policy_id",
            sa.Uuid(),
            sa.ForeignKey("l7policies.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("compare_type", sa.String(16), nullable=False),
        sa.Column("key", sa.String(255), nullable=True),
        sa.Column("value", sa.String(255), nullable=False),
        sa.Column("invert", sa.Boolean(), nullable=False),
    )
    for table, column in (
        ("l7policies", "loadbalancer_id"),
        ("l7policies", "listener_id"),
        ("l7policies", "redirect_pool_id"),
        ("l7rules", "loadbalancer_id"),
        ("l7rules", "l7policy_id"),
    ):
        op.create_index(op.f(f"ix_{table}_{column}"), table, [column])
    op.add_column("quotas", sa.Column("l7policy", sa.Integer(), nullable=True))
    op.add_column("quotas", sa.Column("l7rule", sa.Integer(), nullable=True))


def downgrade() -> None:
    op.drop_column("quotas", "l7rule")
    op.drop_column("quotas", "l7policy")
    op.drop_table("l7rules")
    op.drop_table("l7policies")
