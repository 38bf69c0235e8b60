"""A driver that configures nothing and remembers what it was asked: for tests and benchmarks."""

import threading
from pathlib import Path
from uuid import UUID

from agent_service.drivers import DeviceState, Observed, spec_digest
from agent_service.settings import AgentSettings
from shared.capabilities import EVERY_OPTION, ProviderDeclaration
from shared.messages import DeviceSpec, LoadBalancerSpec, LoadBalancerStatus

EPOCH = "noop"


class NoopDriver:
    """Synchronous and instant; keeps the last spec per (device id, load balancer id) in memory.

    The agent runs its calls in worker threads, hence the lock.
    """

    provider = ProviderDeclaration(
        name="noop",
        description="Configures nothing and accepts every option: for tests and benchmarks.",
        capabilities=EVERY_OPTION,
    )

    def __init__(self, settings: AgentSettings | None = None) -> None:
        self._specs: dict[tuple[UUID, UUID], LoadBalancerSpec] = {}
        self._lock = threading.Lock()
        self._record_dir = settings.noop_record_dir if settings else None

    def apply(self, device: DeviceSpec, spec: LoadBalancerSpec) -> None:
        with self._lock:
            self._specs[device.id, spec.id] = spec
            if self._record_dir is not None:
                _record(self._record_dir, spec)

    def delete(self, device: DeviceSpec, loadbalancer_id: UUID) -> None:
        with self._lock:
            self._specs.pop((device.id, loadbalancer_id), None)

    def status(self, device: DeviceSpec) -> DeviceState:
        """A device that carries no traffic and checks no health: digests and zero counters."""
        return {
            lb_id: Observed(spec_digest(spec), LoadBalancerStatus(epoch=EPOCH))
            for lb_id, spec in self.loadbalancers(device.id).items()
        }

    def digest(self, spec: LoadBalancerSpec) -> str:
        return spec_digest(spec)

    def poll(self, device: DeviceSpec, handle: str) -> None:
        raise LookupError(f"the noop driver has no operation in progress (handle {handle!r})")

    def spec(self, device_id: UUID, loadbalancer_id: UUID) -> LoadBalancerSpec | None:
        """The last spec applied for this load balancer on this device, if not deleted since."""
        with self._lock:
            return self._specs.get((device_id, loadbalancer_id))

    def loadbalancers(self, device_id: UUID) -> dict[UUID, LoadBalancerSpec]:
        """Every load balancer configured on the device, by id."""
        with self._lock:
            return {lb: spec for (device, lb), spec in self._specs.items() if device == device_id}


def _record(record_dir: Path, spec: LoadBalancerSpec) -> None:
    """``<dir>/<lb id>/<generation>.json``: every spec received, for tests to read."""
    folder = record_dir / str(spec.id)
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / f".{spec.generation}.json"
    partial.write_text(spec.model_dump_json())
    partial.rename(folder / f"{spec.generation}.json")
