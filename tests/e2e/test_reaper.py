"""Objects stuck in PENDING_* time out to ERROR; a late result still heals them."""

from pathlib import Path

from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Agent, Api, isolated, running


async def test_stuck_create_times_out_then_a_late_result_heals_it(log_dir: Path) -> None:
    async with isolated() as isolation:
        api = Api(isolation.env(pending_timeout=2, reaper_interval=0.2), log_dir)
        agent = Agent(isolation.agent_env(), log_dir, "agent-late")
        async with running(api, agent), authenticated(api.url) as http:
            api.start()
            await api.wait_ready("/readyz")
            client = LbaasClient(http)
            device = await client.create_device("noop")

            lb = (await client.create_lb(device)).json()["loadbalancer"]
            assert lb["provisioning_status"] == "PENDING_CREATE"
            timed_out = await client.wait_lb(lb["id"], ("ERROR",), timeout=15)
            assert "No result from the agent within 2 s" in timed_out["status_reason"]
            assert [op["status"] for op in await client.operations(lb["id"])] == ["TIMED_OUT"]

            agent.start()
            healed = await client.wait_lb(lb["id"], ("ACTIVE",))
            assert healed["status_reason"] is None
            operation = (await client.operations(lb["id"]))[0]
            assert (operation["status"], operation["agent_id"]) == ("SUCCEEDED", "agent-late")
