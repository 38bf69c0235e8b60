"""What a provider (a driver) can do, as it announces it, and the check of a spec against it.

Each driver declares a :class:`ProviderDeclaration`; agents announce those of their
drivers (``shared.messages.ProviderAnnouncement``) and the API refuses a create or an
update that asks a provider for an option it did not declare, as Octavia does
("Provider 'haproxy' does not support a requested option: …").

The vocabularies (:data:`EVERY_OPTION`) are every value the API accepts. A provider
that has devices but has not announced yet is held to :data:`BASELINE`, what every
driver of this service supports: the values the API accepted before providers were
announced.
"""

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

if TYPE_CHECKING:
    from shared.messages import LoadBalancerSpec

Option = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Options = Annotated[frozenset[Option], Field(max_length=64)]
CapabilityName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
Description = Annotated[str, StringConstraints(pattern=r"^[ -~]{0,255}$")]
"""Printable ASCII, at most 255 characters: it is shown to every project."""


class Capabilities(BaseModel):
    """The option values a provider supports, by kind of option."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listener_protocols: Options
    pool_protocols: Options
    lb_algorithms: Options
    healthmonitor_types: Options
    insert_headers: Options
    """The headers a listener may insert (``insert_headers`` keys)."""
    session_persistence_types: Options

    def first_unsupported(
        self, spec: "LoadBalancerSpec", changed: Collection[UUID]
    ) -> "Unsupported | None":
        """The first option of the objects ``changed`` (by id) in ``spec`` that this does not
        list, or None: objects left unchanged keep what they were accepted with."""
        return next(
            (
                option
                for option in _options(spec, changed)
                if option.value not in getattr(self, option.kind)
            ),
            None,
        )


@dataclass(frozen=True)
class Unsupported:
    kind: str
    """The :class:`Capabilities` field: ``pool_protocols``."""
    field: str
    """The request field that asked for it: ``protocol``, ``insert_headers``."""
    value: str

    @property
    def option(self) -> str:
        """Octavia's words: ``pool protocol PROXY``."""
        return f"{_OPTION_NAMES[self.kind]} {self.value}"


_OPTION_NAMES = {
    "listener_protocols": "listener protocol",
    "pool_protocols": "pool protocol",
    "lb_algorithms": "lb_algorithm",
    "healthmonitor_types": "health monitor type",
    "insert_headers": "insert_headers",
    "session_persistence_types": "session_persistence type",
}


def _options(spec: "LoadBalancerSpec", changed: Collection[UUID]) -> Iterator[Unsupported]:
    """Every option value the changed objects of ``spec`` use."""
    for listener in spec.listeners:
        if listener.id in changed:
            yield Unsupported("listener_protocols", "protocol", listener.protocol)
            for header in sorted(listener.insert_headers):
                yield Unsupported("insert_headers", "insert_headers", header)
    for pool in spec.pools:
        if pool.id in changed:
            yield Unsupported("pool_protocols", "protocol", pool.protocol)
            yield Unsupported("lb_algorithms", "lb_algorithm", pool.lb_algorithm)
            if pool.session_persistence is not None:
                yield Unsupported(
                    "session_persistence_types",
                    "session_persistence.type",
                    pool.session_persistence.type,
                )
        monitor = pool.healthmonitor
        if monitor is not None and monitor.id in changed:
            yield Unsupported("healthmonitor_types", "type", monitor.type)


class ProviderDeclaration(BaseModel):
    """A driver as a provider: its name, what it says of itself, what it can do.

    ``flavor_capabilities`` and ``availability_zone_capabilities`` are the keys a flavor
    (availability zone) profile of the provider may set, each with its description.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: CapabilityName
    description: Description
    capabilities: Capabilities
    flavor_capabilities: dict[CapabilityName, Description] = Field(
        default_factory=dict, max_length=64
    )
    availability_zone_capabilities: dict[CapabilityName, Description] = Field(
        default_factory=dict, max_length=64
    )


BASELINE = Capabilities(
    listener_protocols=frozenset({"HTTP", "HTTPS", "TCP"}),
    pool_protocols=frozenset({"HTTP", "HTTPS", "TCP"}),
    lb_algorithms=frozenset({"ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP"}),
    healthmonitor_types=frozenset({"HTTP", "HTTPS", "TCP", "PING"}),
    insert_headers=frozenset({"X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto"}),
    session_persistence_types=frozenset({"SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"}),
)
"""What a provider that has not announced yet is held to."""

EVERY_OPTION = Capabilities(
    listener_protocols=BASELINE.listener_protocols
    | {"UDP", "SCTP", "TERMINATED_HTTPS", "PROMETHEUS"},
    pool_protocols=BASELINE.pool_protocols | {"PROXY", "PROXYV2", "UDP", "SCTP"},
    lb_algorithms=BASELINE.lb_algorithms | {"SOURCE_IP_PORT"},
    healthmonitor_types=BASELINE.healthmonitor_types | {"TLS-HELLO", "UDP-CONNECT", "SCTP"},
    insert_headers=BASELINE.insert_headers
    | {
        "X-Forwarded-IP",
        "X-Client-IP",
        "X-Real-IP",
        "X-SSL-Client-Verify",
        "X-SSL-Client-Has-Cert",
        "X-SSL-Client-DN",
        "X-SSL-Client-CN",
        "X-SSL-Issuer",
        "X-SSL-Client-SHA1",
        "X-SSL-Client-Not-Before",
        "X-SSL-Client-Not-After",
    },
    session_persistence_types=BASELINE.session_persistence_types,
)
"""Every value the API accepts: Octavia's."""
