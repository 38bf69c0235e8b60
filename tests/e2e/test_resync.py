"""``POST /devices/{id}/resync``: every load balancer on the device published again."""

import json
from pathlib import Path

from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Api

API = "/v2/lbaas"


async def test_resync_republishes_every_load_balancer_of_the_device(
    client: LbaasClient, sim_dir: Path, api: Api
) -> None:
    device = await client.create_device("sim", url="sim://resync-1")
    other = await client.create_device("sim", url="sim://resync-2")
    lbs = [
        await client.wait_lb((await client.create_lb(device)).json()["loadbalancer"]["id"])
        for _ in range(2)
    ]
    elsewhere = await client.wait_lb((await client.create_lb(other)).json()["loadbalancer"]["id"])

    response = await client.http.post(f"{API}/devices/{device['id']}/resync")
    assert response.status_code == 202, response.text
    resync = response.json()["resync"]
    assert sorted(op["loadbalancer_id"] for op in resync["operations"]) == sorted(
        lb["id"] for lb in lbs
    )
    assert resync["skipped"] == []
    for lb in lbs:
        done = await client.wait_lb(lb["id"], ("ACTIVE",))
        assert done["generation"] == lb["generation"] + 1
        assert (await client.operations(lb["id"]))[-1]["action"] == "resync"
    journal = (sim_dir / "resync-1" / "journal.jsonl").read_text().splitlines()
    applied = [json.loads(line) for line in journal if '"apply_done"' in line]
    assert {(e["loadbalancer_id"], e["generation"]) for e in applied} >= {
        (lb["id"], lb["generation"] + 1) for lb in lbs
    }
    assert (await client.get_lb(elsewhere["id"])).json()["loadbalancer"]["generation"] == 1

    missing = await client.http.post(f"{API}/devices/00000000-0000-0000-0000-000000000000/resync")
    assert missing.status_code == 404
    token = (
        await client.http.post(
            f"{API}/tokens", json={"token": {"name": "m", "project_id": "p", "role": "member"}}
        )
    ).json()["token"]["token"]
    async with authenticated(api.url, token) as member:
        forbidden = await member.post(f"{API}/devices/{device['id']}/resync")
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")
