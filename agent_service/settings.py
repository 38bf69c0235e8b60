"""Settings of the agent process, read from ``LBAAS_*`` environment variables."""

import os
import socket
from pathlib import Path

from pydantic import Field, FilePath
from pydantic_settings import SettingsConfigDict

from shared.settings import CommonSettings


def default_agent_id() -> str:
    """``<hostname>-<pid>``: unique among the agents running at one time."""
    return f"{socket.gethostname()[:200]}-{os.getpid()}"


class AgentSettings(CommonSettings):
    """The broker settings both services share, plus the agent's own.

    Fields whose environment variable is not ``LBAAS_<FIELD NAME>`` carry it as
    a validation alias; they can still be passed by field name in code.
    """

    model_config = SettingsConfigDict(validate_by_name=True)

    agent_id: str = Field(default_factory=default_agent_id, min_length=1, max_length=255)
    prefetch: int = Field(
        default=32,
        ge=1,
        le=65535,
        validation_alias="LBAAS_AGENT_PREFETCH",
        description="Unacknowledged commands per shard queue.",
    )
    max_parallel: int = Field(
        default=64,
        ge=1,
        validation_alias="LBAAS_AGENT_MAX_PARALLEL",
        description="Driver calls (applies, repairs, orphan removals) this agent runs at once, "
        "each on a different device: one device takes one call at a time.",
    )
    noop_record_dir: Path | None = Field(
        default=None,
        description="Where the noop driver writes each spec it applies (tests); unset: nowhere.",
    )
    sim_state_dir: Path | None = Field(
        default=None,
        description="Where the sim driver keeps its appliances' state; in memory when unset.",
    )
    poll_interval: float = Field(
        default=0.2,
        gt=0,
        validation_alias="LBAAS_DRIVER_POLL_INTERVAL",
        description="Seconds between polls of a driver call that is in progress.",
    )
    driver_timeout: float = Field(
        default=600.0,
        gt=0,
        description="Seconds one command may spend in its driver before it fails.",
    )
    result_publish_timeout: float = Field(
        default=10.0, gt=0, description="Seconds to wait for the broker to confirm a result."
    )
    status_interval: float = Field(
        default=5.0, gt=0, description="Seconds between status reads of each device."
    )
    orphan_grace: float = Field(
        default=30.0,
        gt=0,
        description="Seconds a load balancer must have been on a device before the device sync "
        "that no longer lists it, for it to be removed as an orphan; more than the clocks of "
        "agents and the database may differ.",
    )
    announce_interval: float = Field(
        default=60.0,
        gt=0,
        description="Seconds between announcements of this agent's providers to the API.",
    )
    device_ca_file: FilePath | None = Field(
        default=None, description="CA bundle that https:// device management URLs are checked with."
    )
    device_client_cert: FilePath | None = Field(
        default=None, description="Client certificate for devices that require mutual TLS."
    )
    device_client_key: FilePath | None = None
    metrics_host: str = Field(
        default="127.0.0.1", description="Where the Prometheus metrics are served."
    )
    metrics_port: int | None = Field(
        default=None, ge=1, le=65535, description="Serve Prometheus metrics on this port."
    )
    shutdown_grace: float = Field(
        default=10.0,
        ge=0,
        description="Seconds in-flight commands may take to finish when the agent stops.",
    )
