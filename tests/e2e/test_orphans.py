"""What a device holds beyond what the database places on it is removed: the configuration a
failover left on the old device, and a load balancer the database never heard of."""

import json
import uuid
from pathlib import Path

from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Agent, Api, eventually, isolated, running

API = "/v2/lbaas"


async def test_orphans_are_removed_and_nothing_the_database_places(
    log_dir: Path, tmp_path: Path
) -> None:
    sim = tmp_path / "sim"
    async with isolated() as isolation:
        api = Api(isolation.env(device_sync_interval=0.5), log_dir)
        agent = Agent(
            isolation.agent_env(sim_state_dir=sim, status_interval=0.3, orphan_grace=0.5),
            log_dir,
            "agent-orphans",
        )
        async with running(api, agent), authenticated(api.url, timeout=10) as http:
            api.start()
            agent.start()
            await api.wait_ready("/readyz")
            client = LbaasClient(http)
            first = await client.create_device("sim", url="sim://orphans-a", cidr="10.211.0.0/24")
            second = await client.create_device("sim", url="sim://orphans-b", cidr="10.211.0.0/24")
            kept = (await client.create_lb(first)).json()["loadbalancer"]
            moved = (await client.create_lb(first)).json()["loadbalancer"]
            for lb in (kept, moved):
                await client.wait_lb(lb["id"], ("ACTIVE",))
            unknown = uuid.uuid4()
            _plant(sim / "orphans-a", unknown, json.loads(_spec_file(sim, "a", kept["id"])))

            await http.put(f"{API}/devices/{first['id']}", json={"device": {"enabled": False}})
            assert (
                await http.put(f"{API}/loadbalancers/{moved['id']}/failover")
            ).status_code == 202
            assert (await client.wait_lb(moved["id"], ("ACTIVE",)))["device_id"] == second["id"]

            async def cleaned() -> set[str] | None:
                held = _held(sim / "orphans-a")
                return held if str(unknown) not in held and moved["id"] not in held else None

            assert await eventually(cleaned, timeout=30, what="orphans removed") == {kept["id"]}
            assert _held(sim / "orphans-b") == {moved["id"]}
            assert "removing it" in agent.log()


def _spec_file(sim: Path, device: str, lb_id: str) -> str:
    return (sim / f"orphans-{device}" / "loadbalancers" / f"{lb_id}.json").read_text()


def _plant(appliance: Path, lb_id: uuid.UUID, spec: dict[str, object]) -> None:
    """A load balancer on the appliance that the database does not know."""
    path = appliance / "loadbalancers" / f"{lb_id}.json"
    path.write_text(json.dumps({**spec, "id": str(lb_id)}))


def _held(appliance: Path) -> set[str]:
    return {path.stem for path in (appliance / "loadbalancers").glob("*.json")}
