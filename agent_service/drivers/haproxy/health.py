"""What HAProxy shows of a load balancer, in the Load Balancer v2 API's terms.

Members as Octavia's health manager maps them: ``UP`` → ONLINE, ``DOWN`` →
ERROR, ``DRAIN`` or weight 0 → DRAINING, ``MAINT`` → OFFLINE, ``no check`` →
NO_MONITOR (``UP 1/2`` and ``DOWN 1/2`` are still what they were). Pools,
listeners and the load balancer are rolled up by the API, which knows the tree.
"""

from collections.abc import Iterable
from uuid import UUID

from agent_service.drivers.haproxy.render import section
from shared.device_api import InstanceStatus, ProxyCounters, ServerState
from shared.messages import Counters, ListenerStatus, LoadBalancerStatus
from shared.status import OperatingStatus


def observe(instance: InstanceStatus) -> LoadBalancerStatus:
    listeners = {
        object_id: ListenerStatus(
            operating_status=(
                OperatingStatus.ONLINE if proxy.status == "OPEN" else OperatingStatus.OFFLINE
            ),
            counters=_counters(proxy),
        )
        for name, proxy in instance.frontends.items()
        if (object_id := _id_of(name, "listener")) is not None
    }
    members = {
        object_id: member_status(server)
        for name, server in instance.servers.items()
        if (object_id := _id_of(name, "member")) is not None
    }
    return LoadBalancerStatus(
        epoch=instance.epoch,
        operating_status=OperatingStatus.OFFLINE if instance.state == "down" else None,
        counters=_sum(listener.counters for listener in listeners.values()),
        listeners=listeners,
        members=members,
    )


def member_status(server: ServerState) -> OperatingStatus:
    status = server.status.split(" ", 1)[0]
    if status.startswith("MAINT"):
        return OperatingStatus.OFFLINE
    if status == "DOWN":
        return OperatingStatus.ERROR
    if status in ("DRAIN", "NOLB") or server.weight == 0:
        return OperatingStatus.DRAINING
    if status == "no":
        return OperatingStatus.NO_MONITOR
    if status == "UP":
        return OperatingStatus.ONLINE
    return OperatingStatus.ERROR


def _counters(proxy: ProxyCounters) -> Counters:
    return Counters(
        active_connections=proxy.scur,
        bytes_in=proxy.bin,
        bytes_out=proxy.bout,
        request_errors=proxy.ereq,
        total_connections=proxy.stot,
    )


def _sum(counters: Iterable[Counters]) -> Counters:
    total: dict[str, int] = dict.fromkeys(Counters.model_fields, 0)
    for item in counters:
        for name in total:
            total[name] += getattr(item, name)
    return Counters(**total)


def _id_of(name: str, prefix: str) -> UUID | None:
    """The id in a section or server name the renderer made; None for anything else."""
    head, _, tail = name.partition("-")
    if head != prefix:
        return None
    try:
        object_id = UUID(tail)
    except ValueError:
        return None
    return object_id if section(prefix, object_id) == name else None
