"""Listeners, pools, members, health monitors and reported stats.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 18:24:10.065449
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loadbalancer_stats",
        sa.Column("loadbalancer_id", sa.Uuid(), nullable=False),
        sa.Column("active_connections", sa.BigInteger(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("request_errors", sa.BigInteger(), nullable=False),
        sa.Column("total_connections", sa.BigInteger(), nullable=False),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["loadbalancer_id"], ["loadbalancers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("loadbalancer_id"),
    )
    op.create_table(
        "pools",
        sa.Column("loadbalancer_id", sa.Uuid(), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("lb_algorithm", sa.String(length=32), nullable=False),
        sa.Column("session_persistence", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=255)), nullable=False),
        sa.Column("changed_generation", sa.BigInteger(), nullable=False),
        sa.Column("deleting", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["loadbalancer_id"], ["loadbalancers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_pools_loadbalancer_id"), "pools", ["loadbalancer_id"], unique=False)
    op.create_table(
        "listeners",
        sa.Column("loadbalancer_id", sa.Uuid(), nullable=False),
        sa.Column("protocol", sa.String(length=16), nullable=False),
        sa.Column("protocol_port", sa.Integer(), nullable=False),
        sa.Column("connection_limit", sa.Integer(), nullable=False),
        sa.Column("default_pool_id", sa.Uuid(), nullable=True),
        sa.Column("timeout_client_data", sa.Integer(), nullable=False),
        sa.Column("timeout_member_connect", sa.Integer(), nullable=False),
        sa.Column("timeout_member_data", sa.Integer(), nullable=False),
        sa.Column("timeout_tcp_inspect", sa.Integer(), nullable=False),
        sa.Column("insert_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("allowed_cidrs", postgresql.ARRAY(sa.String(length=64)), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=255)), nullable=False),
        sa.Column("changed_generation", sa.BigInteger(), nullable=False),
        sa.Column("deleting", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["default_pool_id"], ["pools.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["loadbalancer_id"], ["loadbalancers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("loadbalancer_id", "protocol_port"),
    )
    op.create_index(
        op.f("ix_listeners_loadbalancer_id"), "listeners", ["loadbalancer_id"], unique=False
    )
    op.create_table(
        "healthmonitors",
        sa.Column("loadbalancer_id", sa.Uuid(), nullable=False),
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("delay", sa.Integer(), nullable=False),
        sa.Column("timeout", sa.Integer(), nullable=False),
        sa.Column("max_retries", sa.Integer(), nullable=False),
        sa.Column("max_retries_down", sa.Integer(), nullable=False),
        sa.Column("http_method", sa.String(length=16), nullable=True),
        sa.Column("url_path", sa.String(length=255), nullable=True),
        sa.Column("expected_codes", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=255)), nullable=False),
        sa.Column("changed_generation", sa.BigInteger(), nullable=False),
        sa.Column("deleting", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["loadbalancer_id"], ["loadbalancers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pool_id"], ["pools.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pool_id"),
    )
    op.create_index(
        op.f("ix_healthmonitors_loadbalancer_id"),
        "healthmonitors",
        ["loadbalancer_id"],
        unique=False,
    )
    op.create_table(
        "members",
        sa.Column("loadbalancer_id", sa.Uuid(), nullable=False),
        sa.Column("pool_id", sa.Uuid(), nullable=False),
        sa.Column("address", postgresql.INET(), nullable=False),
        sa.Column("protocol_port", sa.Integer(), nullable=False),
        sa.Column("weight", sa.Integer(), nullable=False),
        sa.Column("backup", sa.Boolean(), nullable=False),
        sa.Column("monitor_address", postgresql.INET(), nullable=True),
        sa.Column("monitor_port", sa.Integer(), nullable=True),
        sa.Column("subnet_id", sa.String(length=64), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("tags", postgresql.ARRAY(sa.String(length=255)), nullable=False),
        sa.Column("changed_generation", sa.BigInteger(), nullable=False),
        sa.Column("deleting", sa.Boolean(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(["loadbalancer_id"], ["loadbalancers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["pool_id"], ["pools.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pool_id", "address", "protocol_port"),
    )
    op.create_index(
        op.f("ix_members_loadbalancer_id"), "members", ["loadbalancer_id"], unique=False
    )
    op.create_index(op.f("ix_members_pool_id"), "members", ["pool_id"], unique=False)
    op.create_table(
        "idempotency_keys",
        sa.Column("owner", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("owner", "key"),
    )
    op.add_column("loadbalancers", sa.Column("vip_subnet_id", sa.String(length=64), nullable=True))
    op.add_column("loadbalancers", sa.Column("vip_network_id", sa.String(length=64), nullable=True))
    op.add_column(
        "loadbalancers",
        sa.Column("changed_generation", sa.BigInteger(), nullable=False, server_default="1"),
    )
    op.add_column(
        "loadbalancers",
        sa.Column("deleting", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.drop_column("loadbalancers", "deleting")
    op.drop_column("loadbalancers", "changed_generation")
    op.drop_column("loadbalancers", "vip_network_id")
    op.drop_column("loadbalancers", "vip_subnet_id")
    op.drop_index(op.f("ix_members_pool_id"), table_name="members")
    op.drop_index(op.f("ix_members_loadbalancer_id"), table_name="members")
    op.drop_table("members")
    op.drop_index(op.f("ix_healthmonitors_loadbalancer_id"), table_name="healthmonitors")
    op.drop_table("healthmonitors")
    op.drop_table("loadbalancer_stats")
    op.drop_index(op.f("ix_listeners_loadbalancer_id"), table_name="listeners")
    op.drop_table("listeners")
    op.drop_index(op.f("ix_pools_loadbalancer_id"), table_name="pools")
    op.drop_table("pools")
