"""HTTP calls to one ``lbaas-device`` (:mod:`shared.device_api`).

Failures become two kinds of error: :class:`ConfigurationRejected` (HAProxy
refused the configuration the tenant asked for; its message is theirs to see)
and :class:`DeviceUnavailable` (the device could not be reached or failed).
Neither message ever holds the device's secret.
"""

import re
from typing import TypeVar
from uuid import UUID

import httpx
from pydantic import BaseModel, ValidationError

from agent_service.drivers import Refused, Superseded
from shared.device_api import API_PREFIX, Applied, ConfigIn, DeviceStatus
from shared.messages import DeviceSpec
from shared.tracing import current_context

_MANAGEMENT_URL = re.compile(r"https?://(?:[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}/?")
TIMEOUT = httpx.Timeout(60.0, connect=3.0)
Shown = TypeVar("Shown", bound=BaseModel)


class ConfigurationRejected(Refused):
    """The device's HAProxy rejected the configuration; the previous one keeps serving."""


class DeviceUnavailable(Exception):
    """The device did not answer, refused the agent's credentials, or failed."""


def base_url(device: DeviceSpec) -> str:
    """The device's ``http(s)://host:port``; nothing else (no user, path or query) is allowed."""
    if not _MANAGEMENT_URL.fullmatch(device.management_url):
        raise DeviceUnavailable(
            f"device {device.name}: a haproxy device's management_url must be "
            "http(s)://HOST:PORT, with nothing else"
        )
    return device.management_url.rstrip("/")


class DeviceClient:
    def __init__(self, device: DeviceSpec, *, verify: str | bool, cert: tuple[str, str] | None):
        if device.secret is None:
            raise DeviceUnavailable(f"device {device.name} has no management secret")
        self.name = device.name
        self._http = httpx.AsyncClient(
            base_url=base_url(device) + API_PREFIX,
            headers={"Authorization": f"Bearer {device.secret.get_secret_value()}"},
            timeout=TIMEOUT,
            verify=verify,
            cert=cert,
        )

    async def put(self, loadbalancer_id: UUID, generation: int, config: str) -> Applied:
        body = ConfigIn(generation=generation, config=config)
        response = await self._call("PUT", f"/loadbalancers/{loadbalancer_id}", body.model_dump())
        if response.status_code == 422:
            raise ConfigurationRejected(f"HAProxy rejected the configuration: {_detail(response)}")
        if response.status_code == 409:
            raise Superseded(f"device {self.name} {_detail(response)}")
        self._expect(response, 200)
        return self._parse(Applied, response)

    async def delete(self, loadbalancer_id: UUID) -> None:
        self._expect(await self._call("DELETE", f"/loadbalancers/{loadbalancer_id}"), 204)

    async def status(self) -> DeviceStatus:
        response = await self._call("GET", "/status")
        self._expect(response, 200)
        return self._parse(DeviceStatus, response)

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, body: object = None) -> httpx.Response:
        try:
            return await self._http.request(method, path, json=body, headers=current_context())
        except httpx.HTTPError as exc:
            raise DeviceUnavailable(
                f"device {self.name} unreachable: {type(exc).__name__}"
            ) from None

    def _parse(self, model: type[Shown], response: httpx.Response) -> Shown:
        """The device's answer; one that does not parse is the device's failure, not shown."""
        try:
            return model.model_validate_json(response.content)
        except ValidationError:
            raise DeviceUnavailable(
                f"device {self.name} answered what this agent cannot read"
            ) from None

    def _expect(self, response: httpx.Response, status: int) -> None:
        if response.status_code == 401:
            raise DeviceUnavailable(f"device {self.name} refused the agent's credentials")
        if response.status_code != status:
            raise DeviceUnavailable(
                f"device {self.name} answered {response.status_code}: {_detail(response)}"
            )


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", ""))[:2000]
    except ValueError:
        return response.text[:200]
