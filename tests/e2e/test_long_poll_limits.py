"""Long polls are bounded: a token holds at most ``LBAAS_MAX_WAITS_PER_TOKEN`` at once (429
beyond), other tokens are not held back by it, and a settled tree wakes its waiters."""

import asyncio
import re
import time
from pathlib import Path

import httpx

from tests.e2e.test_access import issue
from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Agent, Api, eventually, isolated, running

LIMIT = 2
WAIT = {"wait_for": "ACTIVE", "timeout": "60"}


async def _long_polls(api: Api) -> float | None:
    """The ``lbaas_long_polls`` gauge of the API process."""
    try:
        async with httpx.AsyncClient(timeout=2) as http:
            text = (await http.get(api.metrics_url)).text
    except httpx.TransportError:
        return None
    found = re.search(r"^lbaas_long_polls ([0-9.]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else None


async def test_a_token_holds_a_bounded_number_of_long_polls(log_dir: Path) -> None:
    async with isolated() as isolation:
        api = Api(isolation.env(max_waits_per_token=LIMIT), log_dir)
        agent = Agent(isolation.agent_env(), log_dir, "agent-long-polls")
        async with running(api, agent), authenticated(api.url, timeout=90) as http:
            api.start()
            await api.wait_ready("/readyz")
            admin = LbaasClient(http)
            device = await admin.create_device("noop")
            created = await admin.create_lb(device)
            assert created.status_code == 202, created.text
            path = f"/v2/lbaas/loadbalancers/{created.json()['loadbalancer']['id']}"
            # No agent yet: the load balancer stays PENDING_CREATE and every poll waits.
            started = time.monotonic()
            held = [asyncio.create_task(http.get(path, params=WAIT)) for _ in range(LIMIT)]

            async def all_held() -> bool | None:
                return True if await _long_polls(api) == LIMIT else None

            await eventually(all_held, what=f"{LIMIT} long polls held")
            refused = await http.get(path, params={**WAIT, "timeout": "1"})
            assert refused.status_code == 429, refused.text
            assert refused.headers["content-type"] == "application/problem+json"
            assert int(refused.headers["retry-after"]) >= 1
            assert f"{LIMIT} long polls" in refused.json()["detail"]
            assert "LBAAS_MAX_WAITS_PER_TOKEN" in refused.json()["detail"]
            plain = await http.get(path)
            assert plain.json()["loadbalancer"]["provisioning_status"] == "PENDING_CREATE"

            other = await issue(admin, "another-admin", "admin", "admin")
            async with authenticated(api.url, other, timeout=10) as other_http:
                waited = await other_http.get(path, params={**WAIT, "timeout": "0.2"})
            assert waited.status_code == 200, waited.text
            assert waited.json()["loadbalancer"]["provisioning_status"] == "PENDING_CREATE"

            agent.start()
            answers = await asyncio.gather(*held)
            assert time.monotonic() - started < 45, "woken by the result, not by the timeout"
            for answer in answers:
                assert answer.status_code == 200, answer.text
                assert answer.json()["loadbalancer"]["provisioning_status"] == "ACTIVE"

            async def none_held() -> bool | None:
                return True if await _long_polls(api) == 0 else None

            await eventually(none_held, what="every long poll released")
