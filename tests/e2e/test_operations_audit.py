"""The audit trail: ``GET /operations`` lists the newest first, keyset-paged like every list,
and shows the placement of a change to global readers and the device's words to admins only."""

import uuid
from typing import Any

from tests.e2e.test_access import issue
from tests.support.client import LbaasClient
from tests.support.stack import Api

OPERATIONS = "/v2/lbaas/operations"
PROBLEM = "application/problem+json"


async def _changed(admin: LbaasClient, project: str, renames: int) -> tuple[str, list[str]]:
    """A load balancer of ``project`` created and renamed ``renames`` times: its id and the
    ids of its operations, oldest first."""
    device = await admin.create_device("noop")
    created = await admin.create_lb(device, project_id=project)
    assert created.status_code == 202, created.text
    lb_id = created.json()["loadbalancer"]["id"]
    operation_ids = [created.headers["x-operation-id"]]
    await admin.wait_lb(lb_id, ("ACTIVE",))
    for n in range(renames):
        renamed = await admin.http.put(
            f"/v2/lbaas/loadbalancers/{lb_id}", json={"loadbalancer": {"name": f"n{n}"}}
        )
        assert renamed.status_code == 202, renamed.text
        operation_ids.append(renamed.headers["x-operation-id"])
        await admin.wait_lb(lb_id, ("ACTIVE",))
    return lb_id, operation_ids


def _page(response: Any) -> tuple[list[str], dict[str, str]]:
    assert response.status_code == 200, response.text
    body = response.json()
    return (
        [operation["id"] for operation in body["operations"]],
        {link["rel"]: link["href"] for link in body["operations_links"]},
    )


async def test_operations_are_listed_newest_first_in_keyset_pages(
    api: Api, client: LbaasClient, client_factory: Any
) -> None:
    project = f"proj-audit-{uuid.uuid4().hex[:8]}"
    _, oldest_first = await _changed(client, project, renames=4)
    newest_first = oldest_first[::-1]
    member: LbaasClient = client_factory(await issue(client, "auditor", project, "member"))

    ids, links = _page(await member.http.get(OPERATIONS, params={"limit": 2}))
    assert ids == newest_first[:2]
    assert links == {"next": f"{api.url}{OPERATIONS}?limit=2&marker={ids[-1]}"}
    ids, links = _page(await member.http.get(links["next"]))
    assert ids == newest_first[2:4]
    assert set(links) == {"previous", "next"}
    assert links["previous"].startswith(f"{api.url}{OPERATIONS}?limit=2&marker={ids[0]}")
    ids, last_links = _page(await member.http.get(links["next"]))
    assert ids == newest_first[4:]
    assert set(last_links) == {"previous"}
    ids, _ = _page(await member.http.get(last_links["previous"]))
    assert ids == newest_first[2:4]

    ids, _ = _page(await member.http.get(OPERATIONS))
    assert ids == newest_first, "the project's whole trail, newest first"
    ids, _ = _page(await member.http.get(OPERATIONS, params={"sort": "created_at:asc"}))
    assert ids == oldest_first
    ids, _ = _page(await member.http.get(OPERATIONS, params={"page_reverse": "true", "limit": 2}))
    assert ids == newest_first[3:], "the last page: the two oldest"
    ids, _ = _page(await member.http.get(OPERATIONS, params={"action": "create"}))
    assert ids == oldest_first[:1]
    fields = await member.http.get(OPERATIONS, params={"fields": "id,status", "limit": 1})
    assert fields.json()["operations"] == [{"id": newest_first[0], "status": "SUCCEEDED"}]


async def test_the_operations_list_refuses_what_it_cannot_do(
    client: LbaasClient, client_factory: Any
) -> None:
    project = f"proj-audit-{uuid.uuid4().hex[:8]}"
    _, theirs = await _changed(client, f"{project}-other", renames=0)
    member: LbaasClient = client_factory(await issue(client, "auditor", project, "member"))
    for params, status, named in (
        ({"marker": theirs[0]}, 404, "marker"),
        ({"marker": "nonsense"}, 400, "marker"),
        ({"limit": "0"}, 400, "limit"),
        ({"sort": "agent_id:asc"}, 400, "sort"),
        ({"device_id": str(uuid.uuid4())}, 400, "device_id"),
        ({"tags": "x"}, 400, "tags"),
    ):
        refused = await member.http.get(OPERATIONS, params=params)
        assert refused.status_code == status, (params, refused.text)
        assert refused.headers["content-type"] == PROBLEM
        assert named in refused.json()["detail"]


async def test_placement_is_for_global_readers_and_device_words_for_admins(
    client: LbaasClient, client_factory: Any
) -> None:
    project = f"proj-audit-{uuid.uuid4().hex[:8]}"
    # The sim driver refuses this URL when it runs: an infrastructure failure, with the
    # device's own words in the operation.
    device = await client.create_device("sim", url=f"sim://bogus-{uuid.uuid4().hex[:8]}?bogus=1")
    created = await client.create_lb(device, project_id=project)
    assert created.status_code == 202, created.text
    lb_id = created.json()["loadbalancer"]["id"]
    assert (await client.wait_lb(lb_id))["provisioning_status"] == "ERROR"
    operation_id = created.headers["x-operation-id"]
    readers = {
        "admin": client,
        "global_observer": client_factory(
            await issue(client, "audit-global", "proj-elsewhere", "global_observer")
        ),
        "member": client_factory(await issue(client, "audit-member", project, "member")),
        "observer": client_factory(await issue(client, "audit-observer", project, "observer")),
    }
    for role, reader in readers.items():
        shown = await reader.http.get(f"{OPERATIONS}/{operation_id}")
        assert shown.status_code == 200, shown.text
        listed = await reader.http.get(OPERATIONS, params={"loadbalancer_id": lb_id})
        assert listed.status_code == 200, listed.text
        for operation in (shown.json()["operation"], *listed.json()["operations"]):
            assert operation["status"] == "FAILED"
            assert operation["error"], "the project's reason, for every reader"
            placement = (operation["device_id"], operation["agent_id"])
            if role in ("admin", "global_observer"):
                assert placement == (device["id"], "agent-main"), role
            else:
                assert placement == (None, None), role
            if role == "admin":
                assert "bogus" in operation["error_detail"]
            else:
                assert operation["error_detail"] is None, role
                assert "bogus" not in str(operation), role
