"""Devices, load balancers, operations and the outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("driver", sa.String(64), nullable=False),
        sa.Column("management_url", sa.String(2048), nullable=False),
        sa.Column("vip_cidr", postgresql.CIDR(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("loadbalancer_count", sa.Integer(), nullable=False, server_default="0"),
        sa.CheckConstraint("loadbalancer_count >= 0", name="ck_devices_loadbalancer_count"),
        sa.Column("operating_status", sa.String(16), nullable=True),
        *_timestamps(),
    )
    op.create_table(
        "loadbalancers",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("provisioning_status", sa.String(16), nullable=False),
        sa.Column("operating_status", sa.String(16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column(
            "device_id",
            sa.Uuid(),
            sa.ForeignKey("devices.id", ondelete="RESTRICT"),
            nullable=False,
        ),
        sa.Column("vip_address", postgresql.INET(), nullable=False, unique=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(255)), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        *_timestamps(),
    )
    op.create_index("ix_loadbalancers_device_id", "loadbalancers", ["device_id"])
    op.create_index(
        "ix_loadbalancers_project_created", "loadbalancers", ["project_id", "created_at", "id"]
    )
    op.create_index(
        "ix_loadbalancers_pending",
        "loadbalancers",
        ["provisioning_status"],
        postgresql_where=sa.text("provisioning_status LIKE 'PENDING_%'"),
    )
    op.create_table(
        "operations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("loadbalancer_id", sa.Uuid(), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("command_action", sa.String(16), nullable=False),
        sa.Column("target_type", sa.String(32), nullable=False),
        sa.Column("target_id", sa.Uuid(), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("agent_id", sa.String(255), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_operations_loadbalancer", "operations", ["loadbalancer_id", "created_at"])
    op.create_index("ix_operations_status", "operations", ["status"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), primary_key=True, autoincrement=True),
        sa.Column("op_id", sa.Uuid(), nullable=False),
        sa.Column("loadbalancer_id", sa.Uuid(), nullable=False),
        sa.Column("routing_key", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text(), nullable=True),
    )
    op.create_index(
        "ix_outbox_unpublished",
        "outbox",
        ["loadbalancer_id", "id"],
        postgresql_where=sa.text("published_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_table("outbox")
    op.drop_table("operations")
    op.drop_table("loadbalancers")
    op.drop_table("devices")
