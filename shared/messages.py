"""Command and Result messages (DESIGN §5), versioned by ``schema_version``.

Commands are level-triggered: each carries the whole desired state of one load
balancer. Both models forbid unknown fields so that a message from an
incompatible producer is rejected (and dead-lettered) rather than half-read.
"""

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.status import CommandAction, Outcome

SCHEMA_VERSION: Literal[1] = 1


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceSpec(_Message):
    """What a driver needs to reach a device; never a database row."""

    id: UUID
    name: str
    driver: str
    management_url: str


class LoadBalancerSpec(_Message):
    """The whole desired state of one load balancer, at one generation."""

    id: UUID
    project_id: str
    name: str
    description: str
    admin_state_up: bool
    vip_address: str
    generation: int = Field(ge=1)
    listeners: list[dict[str, object]] = Field(default_factory=list)
    pools: list[dict[str, object]] = Field(default_factory=list)


class Command(_Message):
    schema_version: Literal[1] = 1
    op_id: UUID
    device_id: UUID
    loadbalancer_id: UUID
    generation: int = Field(ge=1)
    action: CommandAction
    driver: str
    device: DeviceSpec
    spec: LoadBalancerSpec
    issued_at: datetime
    trace_context: dict[str, str] = Field(default_factory=dict)


class Result(_Message):
    schema_version: Literal[1] = 1
    op_id: UUID
    device_id: UUID
    loadbalancer_id: UUID
    generation: int = Field(ge=1)
    outcome: Outcome
    error: str | None = Field(default=None, max_length=4096)
    agent_id: str = Field(max_length=255)
    started_at: datetime
    finished_at: datetime
