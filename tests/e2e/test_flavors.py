"""Flavors, availability zones and their profiles: defined by admins, chosen by projects, as
Octavia's API has them (synchronous: 201, 200, 204)."""

import json
import uuid
from collections.abc import Callable
from typing import Any

from tests.e2e.test_access import issue
from tests.support.client import LbaasClient

API = "/v2/lbaas"


def _unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def test_admins_define_flavors_and_projects_read_them(
    client: LbaasClient, client_factory: Callable[[str | None], LbaasClient]
) -> None:
    await client.create_device("noop")
    data = json.dumps({"device_group": "gold"})
    created = await client.http.post(
        f"{API}/flavorprofiles",
        json={
            "flavorprofile": {"name": _unique("gold"), "provider_name": "noop", "flavor_data": data}
        },
    )
    assert created.status_code == 201, created.text
    profile = created.json()["flavorprofile"]
    assert created.headers["location"].endswith(f"{API}/flavorprofiles/{profile['id']}")
    assert (profile["provider_name"], json.loads(profile["flavor_data"])) == (
        "noop",
        {"device_group": "gold"},
    )

    name = _unique("gold")
    flavor = await client.http.post(
        f"{API}/flavors",
        json={"flavor": {"name": name, "description": "fast", "flavor_profile_id": profile["id"]}},
    )
    assert flavor.status_code == 201, flavor.text
    flavor_id = flavor.json()["flavor"]["id"]
    assert flavor.json()["flavor"] == {
        "id": flavor_id,
        "name": name,
        "description": "fast",
        "enabled": True,
        "flavor_profile_id": profile["id"],
    }

    member = client_factory(await issue(client, _unique("reader"), _unique("project"), "member"))
    listed = await member.http.get(f"{API}/flavors", params={"name": name})
    assert listed.status_code == 200, listed.text
    assert [f["id"] for f in listed.json()["flavors"]] == [flavor_id]
    assert (await member.http.get(f"{API}/flavors/{flavor_id}")).json()["flavor"]["name"] == name
    for path in ("/flavorprofiles", f"/flavorprofiles/{profile['id']}"):
        refused = await member.http.get(f"{API}{path}")
        assert refused.status_code == 403, refused.text
    refused = await member.http.post(
        f"{API}/flavors",
        json={"flavor": {"name": _unique("x"), "flavor_profile_id": profile["id"]}},
    )
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"

    renamed = await client.http.put(
        f"{API}/flavors/{flavor_id}", json={"flavor": {"enabled": False, "description": "off"}}
    )
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["flavor"]["enabled"], renamed.json()["flavor"]["description"]) == (
        False,
        "off",
    )

    in_use = await client.http.delete(f"{API}/flavorprofiles/{profile['id']}")
    assert in_use.status_code == 409, in_use.text
    assert "in use by flavors" in in_use.json()["detail"]
    fixed = await client.http.put(
        f"{API}/flavorprofiles/{profile['id']}", json={"flavorprofile": {"flavor_data": "{}"}}
    )
    assert fixed.status_code == 409, fixed.text
    assert "flavor_data cannot change" in fixed.json()["detail"]
    renamed_profile = await client.http.put(
        f"{API}/flavorprofiles/{profile['id']}", json={"flavorprofile": {"name": _unique("p")}}
    )
    assert renamed_profile.status_code == 200, renamed_profile.text
    assert (await client.http.delete(f"{API}/flavors/{flavor_id}")).status_code == 204
    assert (await client.http.get(f"{API}/flavors/{flavor_id}")).status_code == 404
    assert (await client.http.delete(f"{API}/flavorprofiles/{profile['id']}")).status_code == 204


async def test_availability_zones_are_named_by_their_name(client: LbaasClient) -> None:
    await client.create_device("noop")
    created = await client.http.post(
        f"{API}/availabilityzoneprofiles",
        json={
            "availability_zone_profile": {
                "name": _unique("az-profile"),
                "provider_name": "noop",
                "availability_zone_data": json.dumps({"device_group": "rack-1"}),
            }
        },
    )
    assert created.status_code == 201, created.text
    profile_id = created.json()["availability_zone_profile"]["id"]
    name = _unique("zone")
    zone = await client.http.post(
        f"{API}/availabilityzones",
        json={"availability_zone": {"name": name, "availability_zone_profile_id": profile_id}},
    )
    assert zone.status_code == 201, zone.text
    assert zone.headers["location"].endswith(f"{API}/availabilityzones/{name}")
    shown = await client.http.get(f"{API}/availabilityzones/{name}")
    assert shown.json()["availability_zone"] == {
        "name": name,
        "description": "",
        "enabled": True,
        "availability_zone_profile_id": profile_id,
    }
    listed = await client.http.get(f"{API}/availabilityzones", params={"name": name})
    assert [z["name"] for z in listed.json()["availability_zones"]] == [name]
    assert (await client.http.delete(f"{API}/availabilityzones/{name}")).status_code == 204
    assert (await client.http.get(f"{API}/availabilityzones/{name}")).status_code == 404


async def test_what_cannot_be_defined_is_refused_and_changes_nothing(client: LbaasClient) -> None:
    async def profile(**fields: Any) -> Any:
        body = {"name": _unique("p"), "provider_name": "noop", "flavor_data": "{}", **fields}
        return await client.http.post(f"{API}/flavorprofiles", json={"flavorprofile": body})

    await client.create_device("noop")
    for fields, field in (
        ({"provider_name": "nosuch"}, "provider_name"),
        ({"flavor_data": "[1, 2]"}, "flavor_data"),
        ({"flavor_data": '{"x": {"nested": 1}}'}, "flavor_data"),
        ({"flavor_data": '{"Bad-Name": 1}'}, "flavor_data"),
        ({"flavor_data": "not json"}, "flavor_data"),
        ({"flavor_data": '{"nosuch_option": 1}'}, "nosuch_option"),
    ):
        refused = await profile(**fields)
        assert refused.status_code == 400, (fields, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert field in refused.json()["detail"]

    taken = _unique("taken")
    assert (await profile(name=taken)).status_code == 201
    duplicate = await profile(name=taken)
    assert duplicate.status_code == 409, duplicate.text
    assert taken in duplicate.json()["detail"]
    listed = await client.http.get(f"{API}/flavorprofiles", params={"name": taken})
    assert len(listed.json()["flavorprofiles"]) == 1

    kept = (await client.http.get(f"{API}/flavorprofiles", params={"name": taken})).json()
    profile_id = kept["flavorprofiles"][0]["id"]
    for field in ("flavor_data", "name", "provider_name"):
        nulled = await client.http.put(
            f"{API}/flavorprofiles/{profile_id}", json={"flavorprofile": {field: None}}
        )
        assert nulled.status_code == 400, nulled.text
        assert field in nulled.json()["detail"]
    shown = (await client.http.get(f"{API}/flavorprofiles/{profile_id}")).json()
    assert shown["flavorprofile"] == kept["flavorprofiles"][0]

    unknown = str(uuid.uuid4())
    orphan = await client.http.post(
        f"{API}/flavors", json={"flavor": {"name": _unique("f"), "flavor_profile_id": unknown}}
    )
    assert orphan.status_code == 404, orphan.text
    assert "flavor_profile_id" in orphan.json()["detail"]


async def _flavor(client: LbaasClient, provider: str, options: dict[str, str]) -> str:
    profile = await client.http.post(
        f"{API}/flavorprofiles",
        json={
            "flavorprofile": {
                "name": _unique("profile"),
                "provider_name": provider,
                "flavor_data": json.dumps(options),
            }
        },
    )
    assert profile.status_code == 201, profile.text
    flavor = await client.http.post(
        f"{API}/flavors",
        json={
            "flavor": {
                "name": _unique("flavor"),
                "flavor_profile_id": profile.json()["flavorprofile"]["id"],
            }
        },
    )
    assert flavor.status_code == 201, flavor.text
    flavor_id: str = flavor.json()["flavor"]["id"]
    return flavor_id


async def _zone(client: LbaasClient, provider: str, options: dict[str, str]) -> str:
    profile = await client.http.post(
        f"{API}/availabilityzoneprofiles",
        json={
            "availability_zone_profile": {
                "name": _unique("zone-profile"),
                "provider_name": provider,
                "availability_zone_data": json.dumps(options),
            }
        },
    )
    assert profile.status_code == 201, profile.text
    name = _unique("zone")
    zone = await client.http.post(
        f"{API}/availabilityzones",
        json={
            "availability_zone": {
                "name": name,
                "availability_zone_profile_id": profile.json()["availability_zone_profile"]["id"],
            }
        },
    )
    assert zone.status_code == 201, zone.text
    return name


async def test_a_flavor_and_a_zone_place_on_their_device_group(client: LbaasClient) -> None:
    group = _unique("gold")
    gold = await client.create_device("noop", device_group=group)
    assert gold["device_group"] == group
    plain = await client.create_device("noop")  # no group: never chosen for the flavor
    flavor_id = await _flavor(client, "noop", {"device_group": group})
    zone = await _zone(client, "noop", {"device_group": group})

    for choice in (
        {"flavor_id": flavor_id},
        {"availability_zone": zone},
        {"flavor_id": flavor_id, "availability_zone": zone},
    ):
        created = await client.http.post(
            f"{API}/loadbalancers", json={"loadbalancer": {"name": "placed", **choice}}
        )
        assert created.status_code == 202, created.text
        lb = created.json()["loadbalancer"]
        assert (lb["device_id"], lb["provider"]) == (gold["id"], "noop"), choice
        assert lb.get("flavor_id") == choice.get("flavor_id")
        assert lb.get("availability_zone") == choice.get("availability_zone")
        await client.wait_lb(lb["id"])

    in_use = await client.http.delete(f"{API}/flavors/{flavor_id}")
    assert in_use.status_code == 409, in_use.text
    assert "in use by load balancers" in in_use.json()["detail"]

    pinned = await client.http.post(
        f"{API}/loadbalancers",
        json={"loadbalancer": {"flavor_id": flavor_id, "device_id": plain["id"]}},
    )
    assert pinned.status_code == 400, pinned.text
    assert "device group" in pinned.json()["detail"]

    spare = await client.create_device(
        "noop", device_group=group, vip_subnet_ids=[lb["vip_subnet_id"]]
    )
    # On the same subnet with more room, but in no group: a failover must not choose it.
    await client.create_device("noop", vip_subnet_ids=[lb["vip_subnet_id"]], capacity=100_000)
    disabled = await client.http.put(
        f"{API}/devices/{gold['id']}", json={"device": {"enabled": False}}
    )
    assert disabled.status_code == 200, disabled.text
    off = await client.http.put(f"{API}/flavors/{flavor_id}", json={"flavor": {"enabled": False}})
    assert off.status_code == 200, off.text
    failed_over = await client.http.put(f"{API}/loadbalancers/{lb['id']}/failover")
    assert failed_over.status_code == 202, failed_over.text
    moved = await client.wait_lb(lb["id"])
    assert moved["device_id"] == spare["id"], "a failover stays in the flavor's device group"


async def test_a_choice_that_cannot_be_honoured_is_refused(client: LbaasClient) -> None:
    group = _unique("silver")
    await client.create_device("noop", device_group=group)
    await client.create_device("sim", url=f"sim://{_unique('appliance')}")
    silver = await _flavor(client, "noop", {"device_group": group})
    other = await _zone(client, "noop", {"device_group": _unique("elsewhere")})
    sim_zone = await _zone(client, "sim", {})
    before = len((await client.http.get(f"{API}/loadbalancers")).json()["loadbalancers"])

    for choice, status, said in (
        ({"flavor_id": str(uuid.uuid4())}, 404, "flavor_id"),
        ({"availability_zone": "nosuch-zone"}, 404, "availability_zone"),
        ({"flavor_id": silver, "provider": "sim"}, 400, "not 'sim'"),
        ({"flavor_id": silver, "availability_zone": sim_zone}, 400, "provider 'sim'"),
        ({"flavor_id": silver, "availability_zone": other}, 400, "differ"),
        ({"availability_zone": other}, 503, "device group"),
    ):
        refused = await client.http.post(
            f"{API}/loadbalancers", json={"loadbalancer": {"name": "refused", **choice}}
        )
        assert refused.status_code == status, (choice, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert said in refused.json()["detail"], (choice, refused.text)

    disabled = await client.http.put(f"{API}/flavors/{silver}", json={"flavor": {"enabled": False}})
    assert disabled.status_code == 200, disabled.text
    refused = await client.http.post(
        f"{API}/loadbalancers", json={"loadbalancer": {"name": "refused", "flavor_id": silver}}
    )
    assert refused.status_code == 400, refused.text
    assert "disabled" in refused.json()["detail"]
    after = len((await client.http.get(f"{API}/loadbalancers")).json()["loadbalancers"])
    assert after == before
