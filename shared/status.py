"""Status enums of the Load Balancer v2 API and of operations (docs/status-rules.md)."""

from enum import StrEnum


class ProvisioningStatus(StrEnum):
    PENDING_CREATE = "PENDING_CREATE"
    PENDING_UPDATE = "PENDING_UPDATE"
    PENDING_DELETE = "PENDING_DELETE"
    ACTIVE = "ACTIVE"
    ERROR = "ERROR"
    DELETED = "DELETED"

    @property
    def is_pending(self) -> bool:
        return self.startswith("PENDING_")


PENDING_STATUSES = frozenset(s for s in ProvisioningStatus if s.is_pending)
MUTABLE_STATUSES = frozenset({ProvisioningStatus.ACTIVE, ProvisioningStatus.ERROR})


class OperatingStatus(StrEnum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"
    DEGRADED = "DEGRADED"
    ERROR = "ERROR"
    DRAINING = "DRAINING"
    NO_MONITOR = "NO_MONITOR"


class OperationStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    SUPERSEDED = "SUPERSEDED"

    @property
    def is_final(self) -> bool:
        """Final operations ignore further results; ``TIMED_OUT`` can still heal."""
        return self in (
            OperationStatus.SUCCEEDED,
            OperationStatus.FAILED,
            OperationStatus.SUPERSEDED,
        )


class CommandAction(StrEnum):
    """What the agent does with a command: converge the device on the spec, or remove it."""

    APPLY = "apply"
    DELETE = "delete"


class Outcome(StrEnum):
    ACTIVE = "ACTIVE"
    ERROR = "ERROR"
