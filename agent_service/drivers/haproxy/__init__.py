"""The ``haproxy`` driver: HAProxy on a device host, managed through its ``lbaas-device``.

The driver renders each load balancer's whole configuration
(:mod:`.render`) and puts it on the device at the device's
``management_url`` with the device's secret; the device checks it, swaps it
in and reloads (:mod:`device_service`). Health and counters come from the
device's status (:mod:`.health`).
"""

from uuid import UUID

from agent_service.drivers import DeviceState, Observed
from agent_service.drivers.haproxy.client import DeviceClient
from agent_service.drivers.haproxy.health import observe
from agent_service.drivers.haproxy.render import CAPABILITIES, render
from agent_service.settings import AgentSettings
from shared.capabilities import ProviderDeclaration
from shared.device_api import config_digest
from shared.messages import DeviceSpec, LoadBalancerSpec


class HaproxyDriver:
    """One HTTP client per device, made again when its URL or secret changes."""

    provider = ProviderDeclaration(
        name="haproxy",
        description="HAProxy on a device host, managed through its lbaas-device.",
        capabilities=CAPABILITIES,
    )

    def __init__(self, settings: AgentSettings) -> None:
        self._verify: str | bool = str(settings.device_ca_file) if settings.device_ca_file else True
        self._cert = (
            (str(settings.device_client_cert), str(settings.device_client_key))
            if settings.device_client_cert and settings.device_client_key
            else None
        )
        self._clients: dict[UUID, tuple[DeviceSpec, DeviceClient]] = {}

    async def apply(self, device: DeviceSpec, spec: LoadBalancerSpec) -> None:
        config = render(spec)
        await (await self._client(device)).put(spec.id, spec.generation, config)

    async def delete(self, device: DeviceSpec, loadbalancer_id: UUID) -> None:
        await (await self._client(device)).delete(loadbalancer_id)

    def poll(self, device: DeviceSpec, handle: str) -> None:
        raise LookupError(f"the haproxy driver finishes every call at once (handle {handle!r})")

    async def status(self, device: DeviceSpec) -> DeviceState:
        shown = await (await self._client(device)).status()
        return {
            instance.id: Observed(instance.digest, observe(instance))
            for instance in shown.loadbalancers
        }

    def digest(self, spec: LoadBalancerSpec) -> str:
        return config_digest(render(spec))

    async def _client(self, device: DeviceSpec) -> DeviceClient:
        """The device's client; a new one (the old one closed) once its URL or secret changed."""
        known = self._clients.get(device.id)
        if known is not None and known[0] == device:
            return known[1]
        client = DeviceClient(device, verify=self._verify, cert=self._cert)
        self._clients[device.id] = (device, client)
        if known is not None:
            await known[1].close()
        return client
