"""Absolute links (``Location``, ``*_links``, version hrefs) start with the API's public URL,
``LBAAS_PUBLIC_URL``, and never with what the request's ``Host`` or ``X-Forwarded-*`` say."""

import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.client import LbaasClient, authenticated, random_cidr
from tests.support.stack import BIN, Api, Isolation, free_port, running

API = "/v2/lbaas"
FORGED = {
    "Host": "evil.example",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Prefix": "/phish",
}
PUBLIC_URL = "https://lb.example.test/octavia"


async def _links(client: LbaasClient, headers: dict[str, str]) -> list[str]:
    """Every absolute link a client meets: the Location of a device and of a load balancer,
    a list's next and previous links (also under /v2.0) and the version hrefs."""
    name = f"links-{uuid.uuid4().hex[:8]}"
    device = {"name": name, "driver": "noop", "management_url": f"noop://{name}"}
    registered = await client.http.post(
        f"{API}/devices",
        json={"device": {**device, "vip_cidr": random_cidr(), "capacity": 10}},
        headers=headers,
    )
    assert registered.status_code == 201, registered.text
    placed = {"provider": "noop", "device_id": registered.json()["device"]["id"]}
    body = {"loadbalancer": placed}
    created = [
        await client.http.post(f"{API}/loadbalancers", json=body, headers=headers) for _ in range(3)
    ]
    for response in created:
        assert response.status_code == 202, response.text
    first = created[0].json()["loadbalancer"]["id"]
    hrefs = [registered.headers["location"], *(r.headers["location"] for r in created)]
    for prefix in ("/v2", "/v2.0"):
        listed = await client.http.get(
            f"{prefix}/lbaas/loadbalancers",
            params={"limit": 1, "marker": first, "sort": "created_at:asc"},
            headers=headers,
        )
        assert listed.status_code == 200, listed.text
        links = listed.json()["loadbalancers_links"]
        assert {link["rel"] for link in links} == {"previous", "next"}
        hrefs += [link["href"] for link in links]
    for path in ("/", "/v2", "/v2.0"):
        versions = (await client.http.get(path, headers=headers)).json()
        for version in versions.get("versions", [versions.get("version")]):
            hrefs += [link["href"] for link in version["links"]]
    return hrefs


async def test_forged_host_headers_do_not_reach_links(api: Api, client: LbaasClient) -> None:
    hrefs = await _links(client, FORGED)
    for href in hrefs:
        assert href.startswith(f"{api.url}/v2"), href
        assert "evil" not in href and "phish" not in href, href


@pytest.fixture(scope="module")
async def public_api(isolation: Isolation, log_dir: Path) -> AsyncIterator[LbaasClient]:
    """An API of the session's stack whose public URL has a path prefix (given with a
    trailing slash, which is not repeated)."""
    api = Api(isolation.api_env(public_url=f"{PUBLIC_URL}/"), log_dir)
    async with running(api), authenticated(api.url, timeout=10) as http:
        api.start()
        await api.wait_ready("/readyz")
        yield LbaasClient(http)


async def test_links_start_with_the_public_url(public_api: LbaasClient) -> None:
    hrefs = await _links(public_api, FORGED)
    for href in hrefs:
        assert href.startswith(f"{PUBLIC_URL}/v2"), href
        assert "//v2" not in href.removeprefix("https://"), href
    assert hrefs[0].startswith(f"{PUBLIC_URL}{API}/devices/"), hrefs[0]
    assert hrefs[1].startswith(f"{PUBLIC_URL}{API}/loadbalancers/"), hrefs[1]
    alias = f"{PUBLIC_URL}/v2.0/lbaas/loadbalancers?limit=1&sort=created_at:asc&marker="
    assert any(href.startswith(alias) for href in hrefs), hrefs


@pytest.mark.parametrize(
    "url",
    [
        "ftp://lb.example.test/",
        "https://lb.example.test/?next=evil",
        "https://lb.example.test/#top",
        "https://ops:secret@lb.example.test/",
        "https:///no-host",
        "https://lb.example.test:99999/",
        "https://lb.example.test/a b",
        "lb.example.test",
    ],
)
def test_an_invalid_public_url_stops_the_api(url: str) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if k != "LBAAS_PUBLIC_URL"},
        "LBAAS_PUBLIC_URL": url,
    }
    done = subprocess.run(
        [str(BIN / "lbaas-api"), "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "LBAAS_PUBLIC_URL" in done.stderr
