"""Tokens, quotas, and who asked for each operation.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tokens",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "quotas",
        sa.Column("project_id", sa.String(255), primary_key=True),
        *(
            sa.Column(kind, sa.Integer(), nullable=True)
            for kind in ("loadbalancer", "listener", "pool", "member", "healthmonitor")
        ),
    )
    op.add_column("operations", sa.Column("requested_by", sa.String(255), nullable=True))
    op.add_column("operations", sa.Column("requested_by_token_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    op.drop_column("operations", "requested_by_token_id")
    op.drop_column("operations", "requested_by")
    op.drop_table("quotas")
    op.drop_table("tokens")
