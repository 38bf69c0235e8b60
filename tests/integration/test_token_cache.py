"""Replicas keep the tokens they found live, yet a revocation reaches every replica at once:
through the database's notification at its commit, not at the end of the cache's time."""

import time
import uuid
from pathlib import Path

import httpx

from tests.support.client import ADMIN_TOKEN, authenticated
from tests.support.stack import Api, Isolation, eventually, running

LBS = "/v2/lbaas/loadbalancers"
CACHE_SECONDS = 600
"""Far longer than the test: only the notification can make a replica refuse the token."""


async def _refused(http: httpx.AsyncClient) -> bool | None:
    response = await http.get(LBS)
    if response.status_code == 200:
        return None
    assert response.status_code == 401, response.text
    assert "revoked" in response.json()["detail"]
    return True


async def test_a_revocation_reaches_every_replica_before_its_cache_expires(
    isolation: Isolation, log_dir: Path
) -> None:
    env = isolation.env(token_cache_seconds=CACHE_SECONDS)
    first, second = Api(env, log_dir), Api(env, log_dir)
    async with running(first, second):
        for api in (first, second):
            api.start()
        for api in (first, second):
            await api.wait_ready("/readyz")
        async with authenticated(first.url, ADMIN_TOKEN) as admin:
            issued = await admin.post(
                "/v2/lbaas/tokens",
                json={
                    "token": {
                        "name": f"cached-{uuid.uuid4().hex[:8]}",
                        "project_id": "p-cache",
                        "role": "member",
                    }
                },
            )
            assert issued.status_code == 201, issued.text
            token = issued.json()["token"]
            async with (
                authenticated(first.url, token["token"]) as on_first,
                authenticated(second.url, token["token"]) as on_second,
            ):
                for http in (on_first, on_second):
                    assert (await http.get(LBS)).status_code == 200  # now cached in both
                revoked_at = time.monotonic()
                assert (await admin.delete(f"/v2/lbaas/tokens/{token['id']}")).status_code == 200
                assert await _refused(on_first)
                await eventually(lambda: _refused(on_second), timeout=5, what="a refusal")
                assert time.monotonic() - revoked_at < CACHE_SECONDS
