"""Command and Result messages, versioned by ``schema_version``.

Commands are level-triggered: each carries the whole desired state of one load
balancer. Both models forbid unknown fields so that a message from an
incompatible producer is rejected (and dead-lettered) rather than half-read.
"""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, SecretStr

from shared.capabilities import ProviderDeclaration
from shared.status import CommandAction, OperatingStatus, Outcome


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


WireSecret = Annotated[
    SecretStr, PlainSerializer(lambda secret: secret.get_secret_value(), when_used="json")
]
"""A secret that travels in JSON messages but never shows in a ``repr`` or a log line."""


class DeviceSpec(_Message):
    """What a driver needs to reach a device, and what the agent signs its reports of the
    device with; never a database row."""

    id: UUID
    name: str
    driver: str
    management_url: str
    secret: WireSecret | None = None
    report_secret: WireSecret = Field(min_length=32, max_length=128)
    """Echoed by every :class:`StatusReport` of the device: only an agent told of the device
    by the API can report on it."""


class SessionPersistenceSpec(_Message):
    type: str
    cookie_name: str | None = None


class MemberSpec(_Message):
    id: UUID
    address: str
    protocol_port: int
    weight: int
    backup: bool
    admin_state_up: bool
    monitor_address: str | None = None
    monitor_port: int | None = None


class HealthMonitorSpec(_Message):
    id: UUID
    type: str
    delay: int
    timeout: int
    max_retries: int
    max_retries_down: int
    admin_state_up: bool
    http_method: str | None = None
    url_path: str | None = None
    expected_codes: str | None = None


class PoolSpec(_Message):
    id: UUID
    protocol: str
    lb_algorithm: str
    admin_state_up: bool
    session_persistence: SessionPersistenceSpec | None = None
    members: list[MemberSpec] = Field(default_factory=list)
    healthmonitor: HealthMonitorSpec | None = None


class L7RuleSpec(_Message):
    """One condition of an L7 policy: ``type`` HOST_NAME, PATH, FILE_TYPE, HEADER or COOKIE,
    ``compare_type`` REGEX, STARTS_WITH, ENDS_WITH, CONTAINS or EQUAL_TO; ``key`` names the
    header or cookie; ``invert`` negates the match."""

    id: UUID
    type: str
    compare_type: str
    key: str | None = None
    value: str
    invert: bool = False
    admin_state_up: bool = True


class L7PolicySpec(_Message):
    """What a listener does with a request all of whose enabled rules match (a policy without
    enabled rules matches nothing); the first matching policy by ``position`` wins.

    ``action`` REJECT, REDIRECT_TO_URL, REDIRECT_PREFIX or REDIRECT_TO_POOL.
    """

    id: UUID
    action: str
    position: int = Field(ge=1)
    admin_state_up: bool = True
    redirect_pool_id: UUID | None = None
    redirect_url: str | None = None
    redirect_prefix: str | None = None
    redirect_http_code: int | None = None
    rules: list[L7RuleSpec] = Field(default_factory=list)


class ListenerSpec(_Message):
    id: UUID
    protocol: str
    protocol_port: int
    admin_state_up: bool
    connection_limit: int
    default_pool_id: UUID | None
    timeout_client_data: int
    timeout_member_connect: int
    timeout_member_data: int
    timeout_tcp_inspect: int
    insert_headers: dict[str, str] = Field(default_factory=dict)
    allowed_cidrs: list[str] = Field(default_factory=list)
    l7policies: list[L7PolicySpec] = Field(default_factory=list, description="In position order.")


class LoadBalancerSpec(_Message):
    """The whole desired state of one load balancer, at one generation.

    Objects being deleted are not in it: applying it removes them from the device. No free
    text of the user's (names, descriptions, tags) is in it: nothing a driver renders can
    carry it.
    """

    id: UUID
    project_id: str
    admin_state_up: bool
    vip_address: str
    generation: int = Field(ge=1)
    listeners: list[ListenerSpec] = Field(default_factory=list)
    pools: list[PoolSpec] = Field(default_factory=list)


class Command(_Message):
    """Version 3: the spec carries no names or descriptions; ``result_secret``."""

    schema_version: Literal[3] = 3
    op_id: UUID
    device_id: UUID
    loadbalancer_id: UUID
    generation: int = Field(ge=1)
    action: CommandAction
    driver: str
    device: DeviceSpec
    spec: LoadBalancerSpec
    issued_at: datetime
    request_id: str | None = Field(default=None, max_length=128)
    """The API request that made the change, for the agent's log lines."""
    trace_context: dict[str, str] = Field(
        default_factory=dict, max_length=8, description="W3C trace context (shared.tracing)."
    )
    result_secret: WireSecret = Field(min_length=32, max_length=128)
    """Known only to the API and the agent that receives the command: its result echoes it."""


class Result(_Message):
    """Version 2: ``result_secret``; ``error`` is for the project, ``detail`` for operators."""

    schema_version: Literal[2] = 2
    op_id: UUID
    device_id: UUID
    loadbalancer_id: UUID
    generation: int = Field(ge=1)
    result_secret: WireSecret = Field(min_length=32, max_length=128)
    outcome: Outcome
    error: str | None = Field(default=None, max_length=4096)
    """Why it failed, in words fit for the project that owns the load balancer."""
    detail: str | None = Field(default=None, max_length=4096)
    """What the driver said, for operators only (it may name hosts and paths of the device)."""
    agent_id: str = Field(max_length=255)
    started_at: datetime
    finished_at: datetime
    trace_context: dict[str, str] = Field(
        default_factory=dict, max_length=8, description="W3C trace context (shared.tracing)."
    )


class Counters(_Message):
    """Traffic counters of a listener or a load balancer.

    In a status report they are cumulative over one ``epoch`` of the device's
    instance (one run of its process, across reloads); the API turns them
    into totals that survive reloads, restarts and agent failovers.
    ``active_connections`` is a gauge.
    """

    active_connections: int = Field(default=0, ge=0)
    bytes_in: int = Field(default=0, ge=0)
    bytes_out: int = Field(default=0, ge=0)
    request_errors: int = Field(default=0, ge=0)
    total_connections: int = Field(default=0, ge=0)


class ListenerStatus(_Message):
    operating_status: OperatingStatus
    counters: Counters = Field(default_factory=Counters)


class LoadBalancerStatus(_Message):
    """What the device shows of one load balancer: health by object id, and counters.

    Objects the device says nothing about (a driver without health checks) are
    left out; the API leaves their operating status as it is.
    """

    epoch: str = Field(min_length=1, max_length=64)
    operating_status: OperatingStatus | None = Field(
        default=None, description="Set when the device knows it serves nothing (OFFLINE)."
    )
    counters: Counters = Field(default_factory=Counters)
    listeners: dict[UUID, ListenerStatus] = Field(default_factory=dict, max_length=10_000)
    members: dict[UUID, OperatingStatus] = Field(default_factory=dict, max_length=100_000)


class StatusReport(_Message):
    """What an agent last read from one device; ``reachable=False`` after repeated failures.

    Version 3: ``report_secret``."""

    schema_version: Literal[3] = 3
    device_id: UUID
    report_secret: WireSecret = Field(min_length=32, max_length=128)
    agent_id: str = Field(max_length=255)
    reported_at: datetime
    """When the agent read the device; the API orders reports by when it receives them and
    refuses one from the future."""
    reachable: bool = True
    loadbalancers: dict[UUID, LoadBalancerStatus] = Field(default_factory=dict, max_length=100_000)


class Inventory(_Message):
    """The load balancers the database places on one device, as of ``taken_at``.

    A load balancer's row is committed before any command for it is published, so
    an instance the device held well before ``taken_at`` (by more than the clocks
    may differ) and that is not listed here is an orphan: deleted, or moved away.
    """

    taken_at: datetime = Field(description="The database's clock when the list was read.")
    loadbalancers: list[UUID] = Field(max_length=1_000_000)


class DeviceSync(_Message):
    """The API's periodic word to the agent active on a device's shard: this device exists.

    It lets an agent that took a shard over poll the shard's devices before any
    command reaches it, and tells it what the device should hold (``inventory``).
    Sent as AMQP message type :data:`DEVICE_SYNC_TYPE`.
    """

    schema_version: Literal[1] = 1
    device: DeviceSpec
    interval: float = Field(gt=0, description="Seconds until the next sync of this device.")
    issued_at: datetime
    inventory: Inventory | None = None
    """None from an API that does not send one: then nothing is removed as an orphan."""


DEVICE_SYNC_TYPE = "device-sync"


class ProviderAnnouncement(_Message):
    """An agent's word to the API: these are my drivers, and what each can do.

    Published when the agent starts, before it consumes commands, and again every
    ``LBAAS_ANNOUNCE_INTERVAL``; the API keeps the last announcement of each driver.
    """

    schema_version: Literal[1] = 1
    agent_id: str = Field(min_length=1, max_length=255)
    announced_at: datetime
    providers: list[ProviderDeclaration] = Field(min_length=1, max_length=64)
