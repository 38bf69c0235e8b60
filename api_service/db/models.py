"""Tables. Statuses are stored as text holding the values of ``shared.status``."""

import uuid
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, CIDR, INET, JSONB
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    column_property,
    declared_attr,
    mapped_column,
    relationship,
)


class Base(DeclarativeBase):
    # Server-side timestamps come back with RETURNING, so objects stay readable after commit.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012


def _now_column() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now(), nullable=False)


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    driver: Mapped[str] = mapped_column(String(64))
    management_url: Mapped[str] = mapped_column(String(2048))
    vip_cidr: Mapped[IPv4Network | IPv6Network] = mapped_column(CIDR)
    capacity: Mapped[int] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    device_group: Mapped[str | None] = mapped_column(String(64))
    """The group flavors and availability zones place by (``device_group`` in their data)."""
    loadbalancer_count: Mapped[int] = mapped_column(Integer, default=0)
    """Load balancers placed here; kept in the transactions that add and remove them."""
    operating_status: Mapped[str | None] = mapped_column(String(16))
    management_secret: Mapped[str | None] = mapped_column(Text)
    """Sealed (``api_service.secret_keys``), never in clear."""
    """What the agent authenticates to the device with; never shown back."""
    status_reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the status report last applied was read: older or future reports change nothing."""
    synced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the agents were last told of this device (see ``messaging.commands``)."""
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    provider: Mapped["Provider | None"] = relationship(
        primaryjoin="foreign(Device.driver) == Provider.name", viewonly=True, lazy="joined"
    )
    """Its driver as the agents last announced it, read with the device: every change checks
    its options against it."""


class VipNetwork(Base):
    """A network VIPs are given on (Neutron-shaped, admin-defined, readable by every project)."""

    __tablename__ = "vip_networks"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class VipSubnet(Base):
    """A range of a network; VIPs are allocated from its ``allocation_pools`` (a list of
    ``{"start", "end"}`` addresses) by the devices that serve it (``device_subnets``)."""

    __tablename__ = "vip_subnets"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    network_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vip_networks.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(255))
    cidr: Mapped[IPv4Network | IPv6Network] = mapped_column(CIDR)
    ip_version: Mapped[int] = column_property(func.family(cidr))
    gateway_ip: Mapped[IPv4Address | IPv6Address | None] = mapped_column(INET)
    allocation_pools: Mapped[list[dict[str, str]]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class DeviceSubnet(Base):
    """A device serves a subnet: it may host load balancers whose VIP is on it."""

    __tablename__ = "device_subnets"

    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    subnet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vip_subnets.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class VipPort(Base):
    """An address taken on a subnet: a load balancer's VIP (``loadbalancer_id``; the port goes
    with it), or one an admin reserved for a project to create a load balancer on."""

    __tablename__ = "vip_ports"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255), default="")
    project_id: Mapped[str] = mapped_column(String(255), index=True)
    network_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vip_networks.id", ondelete="RESTRICT"), index=True
    )
    subnet_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("vip_subnets.id", ondelete="RESTRICT"), index=True
    )
    ip_address: Mapped[IPv4Address | IPv6Address] = mapped_column(INET, unique=True)
    device_owner: Mapped[str] = mapped_column(String(255), default="")
    loadbalancer_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("loadbalancers.id", ondelete="CASCADE"), unique=True
    )
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class TreeObject:
    """Columns every object of a load balancer's tree has (Octavia's common fields).

    ``changed_generation`` is the generation at which the object itself last
    changed (not a child of it): a failed apply of that generation puts exactly
    these objects in ``ERROR``. ``deleting`` marks an object whose delete was
    asked for: it is left out of every spec and removed once a spec without it
    is applied, even when the reaper moved it to ``ERROR`` meanwhile.
    """

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    project_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    provisioning_status: Mapped[str] = mapped_column(String(16))
    operating_status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(255)), default=list)
    changed_generation: Mapped[int] = mapped_column(BigInteger, default=1)
    deleting: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class LoadBalancer(TreeObject, Base):
    __tablename__ = "loadbalancers"
    __table_args__ = (
        Index("ix_loadbalancers_project_created", "project_id", "created_at", "id"),
        Index(
            "ix_loadbalancers_pending",
            "provisioning_status",
            postgresql_where=text("provisioning_status LIKE 'PENDING_%'"),
        ),
    )

    provider: Mapped[str] = mapped_column(String(64))
    device_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("devices.id", ondelete="RESTRICT"), index=True
    )
    vip_address: Mapped[IPv4Address | IPv6Address] = mapped_column(INET, unique=True)
    vip_subnet_id: Mapped[str | None] = mapped_column(String(64))
    vip_network_id: Mapped[str | None] = mapped_column(String(64))
    flavor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("flavors.id", ondelete="RESTRICT")
    )
    availability_zone: Mapped[str | None] = mapped_column(
        ForeignKey("availability_zones.name", ondelete="RESTRICT")
    )
    generation: Mapped[int] = mapped_column(BigInteger, default=1)


class TreeChild(TreeObject):
    """An object under a load balancer; ``loadbalancer_id`` loads a tree with one query a table."""

    @declared_attr
    def loadbalancer_id(cls) -> Mapped[uuid.UUID]:
        return mapped_column(ForeignKey("loadbalancers.id", ondelete="CASCADE"), index=True)

    @declared_attr
    def loadbalancer(cls) -> Mapped["LoadBalancer"]:
        """Never loaded; declared so that a flush writes parents before children."""
        return relationship(lazy="raise")


class Listener(TreeChild, Base):
    __tablename__ = "listeners"
    __table_args__ = (UniqueConstraint("loadbalancer_id", "protocol_port"),)

    protocol: Mapped[str] = mapped_column(String(16))
    protocol_port: Mapped[int] = mapped_column(Integer)
    connection_limit: Mapped[int] = mapped_column(Integer, default=-1)
    default_pool_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("pools.id", ondelete="SET NULL")
    )
    default_pool: Mapped["Pool | None"] = relationship(lazy="raise")
    timeout_client_data: Mapped[int] = mapped_column(Integer)
    timeout_member_connect: Mapped[int] = mapped_column(Integer)
    timeout_member_data: Mapped[int] = mapped_column(Integer)
    timeout_tcp_inspect: Mapped[int] = mapped_column(Integer)
    insert_headers: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    allowed_cidrs: Mapped[list[str]] = mapped_column(ARRAY(String(64)), default=list)


class Pool(TreeChild, Base):
    __tablename__ = "pools"

    protocol: Mapped[str] = mapped_column(String(16))
    lb_algorithm: Mapped[str] = mapped_column(String(32))
    session_persistence: Mapped[dict[str, object] | None] = mapped_column(JSONB)


class Member(TreeChild, Base):
    __tablename__ = "members"
    __table_args__ = (UniqueConstraint("pool_id", "address", "protocol_port"),)

    pool_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pools.id", ondelete="CASCADE"), index=True
    )
    pool: Mapped["Pool"] = relationship(lazy="raise")
    address: Mapped[IPv4Address | IPv6Address] = mapped_column(INET)
    protocol_port: Mapped[int] = mapped_column(Integer)
    weight: Mapped[int] = mapped_column(Integer, default=1)
    backup: Mapped[bool] = mapped_column(Boolean, default=False)
    monitor_address: Mapped[IPv4Address | IPv6Address | None] = mapped_column(INET)
    monitor_port: Mapped[int | None] = mapped_column(Integer)
    subnet_id: Mapped[str | None] = mapped_column(String(64))


class HealthMonitor(TreeChild, Base):
    __tablename__ = "healthmonitors"

    pool_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("pools.id", ondelete="CASCADE"), unique=True
    )
    pool: Mapped["Pool"] = relationship(lazy="raise")
    type: Mapped[str] = mapped_column(String(16))
    delay: Mapped[int] = mapped_column(Integer)
    timeout: Mapped[int] = mapped_column(Integer)
    max_retries: Mapped[int] = mapped_column(Integer)
    max_retries_down: Mapped[int] = mapped_column(Integer)
    http_method: Mapped[str | None] = mapped_column(String(16))
    url_path: Mapped[str | None] = mapped_column(String(255))
    expected_codes: Mapped[str | None] = mapped_column(String(64))


class StatsRow:
    """Totals of the counters reported for one object, across reloads and restarts.

    Reports carry counters cumulative over one ``epoch`` of the device's
    instance; ``seen_*`` hold the last values seen in that epoch, so each
    report adds only what is new (a new epoch counts from zero).
    """

    epoch: Mapped[str] = mapped_column(String(64), default="")
    active_connections: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
    request_errors: Mapped[int] = mapped_column(BigInteger, default=0)
    total_connections: Mapped[int] = mapped_column(BigInteger, default=0)
    seen_bytes_in: Mapped[int] = mapped_column(BigInteger, default=0)
    seen_bytes_out: Mapped[int] = mapped_column(BigInteger, default=0)
    seen_request_errors: Mapped[int] = mapped_column(BigInteger, default=0)
    seen_total_connections: Mapped[int] = mapped_column(BigInteger, default=0)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class L7Policy(TreeChild, Base):
    """What a listener does with requests matching all of its rules; ``position`` orders a
    listener's policies from 1, without gaps."""

    __tablename__ = "l7policies"

    listener_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("listeners.id", ondelete="CASCADE"), index=True
    )
    listener: Mapped["Listener"] = relationship(lazy="raise")
    action: Mapped[str] = mapped_column(String(32))
    position: Mapped[int] = mapped_column(Integer)
    redirect_pool_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("pools.id"), index=True)
    redirect_pool: Mapped["Pool | None"] = relationship(lazy="raise")
    redirect_url: Mapped[str | None] = mapped_column(String(2048))
    redirect_prefix: Mapped[str | None] = mapped_column(String(2048))
    redirect_http_code: Mapped[int | None] = mapped_column(Integer)


class L7Rule(TreeChild, Base):
    __tablename__ = "l7rules"

    l7policy_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("l7policies.id", ondelete="CASCADE"), index=True
    )
    l7policy: Mapped["L7Policy"] = relationship(lazy="raise")
    type: Mapped[str] = mapped_column(String(16))
    compare_type: Mapped[str] = mapped_column(String(16))
    key: Mapped[str | None] = mapped_column(String(255))
    value: Mapped[str] = mapped_column(String(255))
    invert: Mapped[bool] = mapped_column(Boolean, default=False)


class LoadBalancerStats(StatsRow, Base):
    __tablename__ = "loadbalancer_stats"

    loadbalancer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loadbalancers.id", ondelete="CASCADE"), primary_key=True
    )


class ListenerStats(StatsRow, Base):
    __tablename__ = "listener_stats"

    listener_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("listeners.id", ondelete="CASCADE"), primary_key=True
    )
    loadbalancer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loadbalancers.id", ondelete="CASCADE"), index=True
    )


class Operation(Base):
    """One asynchronous change: the audit trail and what clients poll besides the object."""

    __tablename__ = "operations"
    __table_args__ = (
        Index("ix_operations_loadbalancer", "loadbalancer_id", "created_at"),
        Index("ix_operations_created", "created_at", "id"),
        Index("ix_operations_project", "project_id", "created_at", "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    project_id: Mapped[str] = mapped_column(String(255))
    loadbalancer_id: Mapped[uuid.UUID]
    device_id: Mapped[uuid.UUID]
    action: Mapped[str] = mapped_column(String(32))
    command_action: Mapped[str] = mapped_column(String(16))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[uuid.UUID]
    generation: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    """Why it failed, fit for the project."""
    error_detail: Mapped[str | None] = mapped_column(Text)
    """What the device said, for admins only."""
    result_secret_hash: Mapped[str | None] = mapped_column(String(64))
    """SHA-256 of the secret the command carries and only its result can echo."""
    agent_id: Mapped[str | None] = mapped_column(String(255))
    requested_by: Mapped[str | None] = mapped_column(String(255))
    """The name of the token that asked for the change."""
    requested_by_token_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime] = _now_column()
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class OutboxRow(Base):
    """A command committed with its operation, waiting to be (or already) published."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index(
            "ix_outbox_unpublished",
            "loadbalancer_id",
            "id",
            postgresql_where=text("published_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    op_id: Mapped[uuid.UUID]
    loadbalancer_id: Mapped[uuid.UUID]
    routing_key: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)
    """The command's JSON, sealed: it holds the device's secret and the result secret."""
    created_at: Mapped[datetime] = _now_column()
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class IdempotencyKey(Base):
    """The first answer to a POST that carried an ``Idempotency-Key``, replayed for 24 h."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (Index("ix_idempotency_keys_created", "created_at"),)

    owner: Mapped[str] = mapped_column(String(255), primary_key=True)
    """Whose key it is: a digest of the caller's token."""
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    """None while the first request is still being answered."""
    headers: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = _now_column()


class Token(Base):
    """An API token: only its SHA-256 is stored; the value is shown once, at creation."""

    __tablename__ = "tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255))
    project_id: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = _now_column()
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Quota(Base):
    """A project's limits; a null column means the default from the settings."""

    __tablename__ = "quotas"

    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    loadbalancer: Mapped[int | None] = mapped_column(Integer)
    listener: Mapped[int | None] = mapped_column(Integer)
    pool: Mapped[int | None] = mapped_column(Integer)
    member: Mapped[int | None] = mapped_column(Integer)
    healthmonitor: Mapped[int | None] = mapped_column(Integer)
    l7policy: Mapped[int | None] = mapped_column(Integer)
    l7rule: Mapped[int | None] = mapped_column(Integer)


class Provider(Base):
    """A driver as the agents last announced it (``shared.capabilities.ProviderDeclaration``)."""

    __tablename__ = "providers"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(255))
    capabilities: Mapped[dict[str, list[str]]] = mapped_column(JSONB)
    flavor_capabilities: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    availability_zone_capabilities: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    announced_by: Mapped[str] = mapped_column(String(255))
    """The agent whose announcement this is."""
    announced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class OperatorDefined:
    """What every operator-defined object has: flavors, availability zones, their profiles."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = _now_column()
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class FlavorProfile(OperatorDefined, Base):
    """A provider's options (``flavor_data``, a JSON object as text) behind a flavor."""

    __tablename__ = "flavor_profiles"

    provider_name: Mapped[str] = mapped_column(String(64))
    flavor_data: Mapped[str] = mapped_column(Text)


class Flavor(OperatorDefined, Base):
    """What a project may ask for on a load balancer create: a profile under a name."""

    __tablename__ = "flavors"

    description: Mapped[str] = mapped_column(String(255), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    flavor_profile_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("flavor_profiles.id", ondelete="RESTRICT")
    )


class AvailabilityZoneProfile(OperatorDefined, Base):
    """A provider's options (``availability_zone_data``) behind an availability zone."""

    __tablename__ = "availability_zone_profiles"

    provider_name: Mapped[str] = mapped_column(String(64))
    availability_zone_data: Mapped[str] = mapped_column(Text)


class AvailabilityZone(OperatorDefined, Base):
    """A named group of devices a project may place a load balancer in."""

    __tablename__ = "availability_zones"

    description: Mapped[str] = mapped_column(String(255), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    availability_zone_profile_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("availability_zone_profiles.id", ondelete="RESTRICT")
    )
