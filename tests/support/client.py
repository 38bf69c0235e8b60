"""A thin test client for the lbaas HTTP API, with polling helpers."""

import os
import secrets
import uuid
from typing import Any

import httpx

from tests.support.stack import eventually

TERMINAL = ("ACTIVE", "ERROR")

ADMIN_TOKEN = os.environ.setdefault("LBAAS_BOOTSTRAP_ADMIN_TOKEN", secrets.token_urlsafe(32))
"""Every API process a test starts inherits it and stores it as its bootstrap admin token."""


def authenticated(url: str, token: str = ADMIN_TOKEN, **options: Any) -> httpx.AsyncClient:
    """An HTTP client for the API at ``url`` that sends ``token`` (the admin's by default)."""
    return httpx.AsyncClient(base_url=url, headers={"X-Auth-Token": token}, **options)


class LbaasClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def create_device(
        self,
        driver: str = "noop",
        *,
        url: str | None = None,
        cidr: str | None = None,
        capacity: int = 1000,
        **extra: Any,
    ) -> dict[str, Any]:
        suffix = uuid.uuid4().hex[:8]
        body = {
            "name": f"{driver}-{suffix}",
            "driver": driver,
            "management_url": url or f"{driver}://appliance-{suffix}",
            "vip_cidr": cidr or random_cidr(),
            "capacity": capacity,
            **extra,
        }
        response = await self.http.post("/v2/lbaas/devices", json={"device": body})
        assert response.status_code == 201, response.text
        device: dict[str, Any] = response.json()["device"]
        return device

    async def create_lb(self, device: dict[str, Any], **fields: Any) -> httpx.Response:
        body = {"name": "web", "provider": device["driver"], "device_id": device["id"], **fields}
        return await self.http.post("/v2/lbaas/loadbalancers", json={"loadbalancer": body})

    async def get_lb(self, lb_id: str) -> httpx.Response:
        return await self.http.get(f"/v2/lbaas/loadbalancers/{lb_id}")

    async def wait_lb(
        self, lb_id: str, statuses: tuple[str, ...] = TERMINAL, timeout: float = 30
    ) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            response = await self.get_lb(lb_id)
            assert response.status_code == 200, response.text
            lb: dict[str, Any] = response.json()["loadbalancer"]
            return lb if lb["provisioning_status"] in statuses else None

        return await eventually(
            reached, timeout=timeout, what=f"load balancer {lb_id} in {statuses}"
        )

    async def wait_gone(self, lb_id: str, timeout: float = 30) -> None:
        async def gone() -> bool | None:
            return True if (await self.get_lb(lb_id)).status_code == 404 else None

        await eventually(gone, timeout=timeout, what=f"load balancer {lb_id} deleted")

    async def operations(self, lb_id: str) -> list[dict[str, Any]]:
        """The load balancer's operations, oldest first (the API lists the newest first)."""
        response = await self.http.get(
            "/v2/lbaas/operations", params={"loadbalancer_id": lb_id, "sort": "created_at:asc"}
        )
        assert response.status_code == 200, response.text
        operations: list[dict[str, Any]] = response.json()["operations"]
        return operations


_cidr_counter = iter(range(1, 1_000_000))


def random_cidr() -> str:
    """A /24 no other device of this process uses (VIPs are unique across devices)."""
    n = next(_cidr_counter)
    return f"10.{n // 256 % 256}.{n % 256}.0/24"
