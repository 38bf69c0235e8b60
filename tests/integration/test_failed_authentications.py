"""Failed authentications are limited per client address, and only failures count
(security review, issue 11, finding 7). The API of this module allows 5 failures and
earns one back every 100 s: none during the test."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.support.client import ADMIN_TOKEN
from tests.support.stack import Api, isolated, running

LBS = "/v2/lbaas/loadbalancers"
BURST = 5


@pytest.fixture(scope="module")
async def api_url(log_dir: Path) -> AsyncIterator[str]:
    async with isolated() as isolation:
        api = Api(isolation.api_env(auth_failure_rate=0.01, auth_failure_burst=BURST), log_dir)
        async with running(api):
            api.start()
            await api.wait_ready("/readyz")
            yield api.url


async def _get(url: str, token: str, address: str) -> httpx.Response:
    """A list request as if from ``address`` (the API trusts X-Forwarded-For from 127.0.0.1)."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        return await http.get(LBS, headers={"X-Auth-Token": token, "X-Forwarded-For": address})


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["retry-after"]) >= 1
    assert "failed authentications" in response.json()["detail"]


async def test_only_failures_count_and_beyond_them_the_address_waits(api_url: str) -> None:
    address = "192.0.2.10"
    for _ in range(3 * BURST):
        assert (await _get(api_url, ADMIN_TOKEN, address)).status_code == 200
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        for _ in range(BURST):
            refused = await http.post(
                LBS,
                json={"loadbalancer": {}},
                headers={"X-Auth-Token": "x" * 43, "X-Forwarded-For": address},
            )
            assert refused.status_code == 401, refused.text
    _assert_limited(await _get(api_url, "x" * 43, address))
    # Its tokens are not even looked at: a valid one waits too.
    _assert_limited(await _get(api_url, ADMIN_TOKEN, address))
    # Another address is not concerned.
    assert (await _get(api_url, "x" * 43, "192.0.2.11")).status_code == 401
    assert (await _get(api_url, ADMIN_TOKEN, "192.0.2.11")).status_code == 200


async def test_an_ipv6_client_is_its_slash_64(api_url: str) -> None:
    for host in range(1, BURST + 1):
        assert (await _get(api_url, "x" * 43, f"2001:db8:0:7::{host}")).status_code == 401
    _assert_limited(await _get(api_url, "x" * 43, "2001:db8:0:7::ffff"))
    assert (await _get(api_url, "x" * 43, "2001:db8:0:8::1")).status_code == 401


async def test_a_request_without_a_token_costs_no_failure(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=10) as http:
        for _ in range(3 * BURST):
            missing = await http.get(LBS, headers={"X-Forwarded-For": "192.0.2.12"})
            assert missing.status_code == 401
    assert (await _get(api_url, ADMIN_TOKEN, "192.0.2.12")).status_code == 200
