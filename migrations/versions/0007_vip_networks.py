"""VIP networks, subnets and ports (Neutron-shaped), and which devices serve which subnet.

Each distinct ``vip_cidr`` of the existing devices becomes a subnet (allocation
pool: its host range) on a network of its own, served by those devices; each
existing load balancer gets a VIP port on the subnet holding its address, and
its ``vip_subnet_id``/``vip_network_id`` name them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import json
import uuid
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OWNER = "admin"


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def _create_tables() -> None:
    op.create_table(
        "vip_networks",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("description", sa.String(255), nullable=False, server_default=""),
        sa.Column("project_id", sa.String(255), nullable=False),
        *_timestamps(),
    )
    op.create_table(
        "vip_subnets",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "network_id",
            sa.Uuid(),
            sa.ForeignKey("vip_networks.id", ondelete="RESTRICT"),
            nullable=False,
            index=True,
        ),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("description", sa.String(255), nullable=False, server_default=""),
        sa.Column("project_id", sa.String(255), nullable=False),
        sa.Column("cidr", postgresql.CIDR(), nullable=False),
        sa.Column("gateway_ip", postgresql.INET(), nullable=True),
        sa.Column("allocation_pools", postgresql.JSONB(), nullable=False),
        *_timestamps(),
    )
    op.create_table(
        "device_subnets",
        sa.Column(
            "device_id",
            sa.Uuid(),
            sa.ForeignKey("devices.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "subnet_id",
            sa.Uuid(),
            sa.ForeignKey("vip_subnets.id", ondelete="CASCADE"),
            primary_key=True,
            index=True,
        ),
    )
    op.create_table(
        "vip_ports",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("project_id", sa.String(255), nullable=False, index=True),
        sa.Column(
            "network_id",
            sa.Uuid(),
            sa.ForeignKey("vip_networks.id", ondelete="RESTRICT"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "subnet_id",
            sa.Uuid(),
            sa.ForeignKey("vip_subnets.id", ondelete="RESTRICT"),
            nullable=False,
            index=True,
        ),
        sa.Column("ip_address", postgresql.INET(), nullable=False, unique=True),
        sa.Column("device_owner", sa.String(255), nullable=False, server_default=""),
        sa.Column(
            "loadbalancer_id",
            sa.Uuid(),
            sa.ForeignKey("loadbalancers.id", ondelete="CASCADE"),
            nullable=True,
            unique=True,
        ),
        *_timestamps(),
    )


def _host_pool(network: IPv4Network | IPv6Network) -> list[dict[str, str]]:
    if network.num_addresses <= 2:
        return [{"start": str(network[0]), "end": str(network[-1])}]
    return [{"start": str(network[1]), "end": str(network[-2])}]


def _subnets_for_devices() -> dict[str, tuple[uuid.UUID, uuid.UUID]]:
    """One network and subnet per distinct device ``vip_cidr``: cidr → (network, subnet)."""
    connection = op.get_bind()
    made: dict[str, tuple[uuid.UUID, uuid.UUID]] = {}
    devices = connection.execute(sa.text("SELECT id, vip_cidr FROM devices ORDER BY name"))
    for device_id, vip_cidr in devices.all():
        cidr = str(vip_cidr)
        if cidr not in made:
            made[cidr] = (uuid.uuid4(), uuid.uuid4())
            network_id, subnet_id = made[cidr]
            connection.execute(
                sa.text(
                    "INSERT INTO vip_networks (id, name, project_id) VALUES (:id, :name, :project)"
                ),
                {"id": network_id, "name": f"vip-{cidr}", "project": _OWNER},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO vip_subnets"
                    " (id, network_id, name, project_id, cidr, allocation_pools)"
                    " VALUES (:id, :network, :name, :project, CAST(:cidr AS cidr),"
                    " CAST(:pools AS jsonb))"
                ),
                {
                    "id": subnet_id,
                    "network": network_id,
                    "name": f"vip-{cidr}",
                    "project": _OWNER,
                    "cidr": cidr,
                    "pools": json.dumps(_host_pool(ip_network(cidr))),
                },
            )
        connection.execute(
            sa.text("INSERT INTO device_subnets (device_id, subnet_id) VALUES (:device, :subnet)"),
            {"device": device_id, "subnet": made[cidr][1]},
        )
    return made


def _ports_for_loadbalancers(subnets: dict[str, tuple[uuid.UUID, uuid.UUID]]) -> None:
    connection = op.get_bind()
    rows = connection.execute(
        sa.text(
            "SELECT lb.id, lb.project_id, lb.vip_address, d.vip_cidr FROM loadbalancers lb"
            " JOIN devices d ON d.id = lb.device_id"
        )
    )
    for lb_id, project_id, vip, device_cidr in rows.all():
        address = ip_address(str(vip))
        own = subnets.get(str(device_cidr))
        if own is None or address not in ip_network(str(device_cidr)):
            continue
        network_id, subnet_id = own
        connection.execute(
            sa.text(
                "INSERT INTO vip_ports (id, name, project_id, network_id, subnet_id, ip_address,"
                " device_owner, loadbalancer_id) VALUES (:id, :name, :project, :network,"
                " :subnet, CAST(:ip AS inet), 'Octavia', :lb)"
            ),
            {
                "id": uuid.uuid4(),
                "name": f"octavia-lb-{lb_id}",
                "project": project_id,
                "network": network_id,
                "subnet": subnet_id,
                "ip": str(address),
                "lb": lb_id,
            },
        )
        connection.execute(
            sa.text(
                "UPDATE loadbalancers SET vip_subnet_id = :subnet, vip_network_id = :network"
                " WHERE id = :lb"
            ),
            {"subnet": str(subnet_id), "network": str(network_id), "lb": lb_id},
        )


def upgrade() -> None:
    _create_tables()
    _ports_for_loadbalancers(_subnets_for_devices())


def downgrade() -> None:
    op.drop_table("vip_ports")
    op.drop_table("device_subnets")
    op.drop_table("vip_subnets")
    op.drop_table("vip_networks")
