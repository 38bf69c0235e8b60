"""The HTTP management API of ``lbaas-device``, shared by the daemon and the ``haproxy`` driver.

Every call carries ``Authorization: Bearer <device secret>``. The agent sends
the load balancer part of the configuration (``defaults``, ``frontend``,
``backend`` sections); the device adds its own ``global`` section (socket and
state paths are the device host's business) and answers with the digest of
what it received, so that the agent can tell whether a device holds what it
would render.
"""

import hashlib
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

API_PREFIX = "/v1"
MAX_CONFIG_BYTES = 16 * 1024 * 1024


def config_digest(config: str) -> str:
    """``sha256:<hex>`` of a configuration's UTF-8 bytes."""
    return "sha256:" + hashlib.sha256(config.encode()).hexdigest()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigIn(_Body):
    """``PUT /v1/loadbalancers/{id}``: the whole configuration of one load balancer."""

    generation: int = Field(ge=1)
    config: str = Field(max_length=MAX_CONFIG_BYTES)


class InstanceOut(_Body):
    """One load balancer on the device.

    ``state`` is ``running`` (a HAProxy process serves it), ``idle`` (its
    configuration has no listener to serve, so no process runs) or ``down``
    (the process died; the supervisor restarts it).
    """

    id: UUID
    generation: int
    digest: str
    state: Literal["running", "idle", "down"]


class InstanceList(_Body):
    loadbalancers: list[InstanceOut]


class Applied(InstanceOut):
    changed: bool = Field(description="False when the device already held this configuration.")


class ProxyCounters(_Body):
    """A frontend's counters, cumulative over the instance's epoch (carried across reloads)."""

    status: str
    scur: int = 0
    stot: int = 0
    bin: int = 0
    bout: int = 0
    ereq: int = 0


class ServerState(_Body):
    """A server as ``show stat`` shows it: ``status`` such as ``UP``, ``DOWN 1/2``, ``MAINT``."""

    backend: str
    status: str
    weight: int
    check_status: str = ""


class InstanceStatus(InstanceOut):
    epoch: str = Field(description="Changes whenever the device starts a new HAProxy process.")
    frontends: dict[str, ProxyCounters] = Field(default_factory=dict)
    servers: dict[str, ServerState] = Field(default_factory=dict)


class DeviceStatus(_Body):
    """``GET /v1/status``: every load balancer with its health and counters."""

    loadbalancers: list[InstanceStatus]
