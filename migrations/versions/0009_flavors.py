"""Flavors, availability zones and their profiles; device groups; a load balancer's choice.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _definition_columns() -> list[sa.Column[object]]:
    """What every operator-defined object has (``db.models.Definition``)."""
    return [
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def _profile(table: str, data: str) -> None:
    op.create_table(
        table,
        *_definition_columns(),
        sa.Column("provider_name", sa.String(64), nullable=False),
        sa.Column(data, sa.Text(), nullable=False),
    )


def _offer(table: str, profile_column: str, profile_table: str) -> None:
    op.create_table(
        table,
        *_definition_columns(),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column(
            profile_column,
            sa.Uuid(),
            sa.ForeignKey(f"{profile_table}.id", ondelete="RESTRICT"),
            nullable=False,
        ),
    )


def upgrade() -> None:
    _profile("flavor_profiles", "flavor_data")
    _offer("flavors", "flavor_profile_id", "flavor_profiles")
    _profile("availability_zone_profiles", "availability_zone_data")
    _offer("availability_zones", "availability_zone_profile_id", "availability_zone_profiles")
    op.add_column("devices", sa.Column("device_group", sa.String(64), nullable=True))
    op.add_column(
        "loadbalancers",
        sa.Column(
            "flavor_id",
            sa.Uuid(),
            sa.ForeignKey("flavors.id", ondelete="RESTRICT"),
            nullable=True,
        ),
    )
    op.add_column(
        "loadbalancers",
        sa.Column(
            "availability_zone",
            sa.String(255),
            sa.ForeignKey("availability_zones.name", ondelete="RESTRICT"),
            nullable=True,
        ),
    )


def downgrade() -> None:
    op.drop_column("loadbalancers", "availability_zone")
    op.drop_column("loadbalancers", "flavor_id")
    op.drop_column("devices", "device_group")
    for table in ("availability_zones", "availability_zone_profiles", "flavors", "flavor_profiles"):
        op.drop_table(table)
