"""``kill -9`` of the agent mid-apply: the command is redelivered and finishes exactly once."""

import json
from pathlib import Path

from tests.support.client import LbaasClient, authenticated
from tests.support.stack import Agent, Api, eventually, isolated, running


async def test_command_survives_kill_9_of_the_agent(log_dir: Path, tmp_path: Path) -> None:
    journal = tmp_path / "sim" / "killed-1" / "journal.jsonl"

    def events() -> list[tuple[str, int]]:
        if not journal.exists():
            return []
        lines = [json.loads(line) for line in journal.read_text().splitlines()]
        return [(line["event"], line["generation"]) for line in lines]

    async with isolated() as isolation:
        api = Api(isolation.env(), log_dir)
        first = Agent(isolation.agent_env(sim_state_dir=tmp_path / "sim"), log_dir, "agent-killed")
        second = Agent(isolation.agent_env(sim_state_dir=tmp_path / "sim"), log_dir, "agent-second")
        async with running(api, first, second), authenticated(api.url) as http:
            api.start()
            first.start()
            await api.wait_ready("/readyz")
            client = LbaasClient(http)
            device = await client.create_device("sim", url="sim://killed-1?latency=1.5")
            lb = (await client.create_lb(device)).json()["loadbalancer"]

            async def started() -> bool | None:
                return True if ("apply_started", 1) in events() else None

            await eventually(started, what="the slow apply to start")
            first.kill()
            assert (await client.get_lb(lb["id"])).json()["loadbalancer"][
                "provisioning_status"
            ] == "PENDING_CREATE"

            second.start()
            active = await client.wait_lb(lb["id"], ("ACTIVE",))
            assert active["generation"] == 1
            assert events().count(("apply_started", 1)) == 2
            assert events().count(("apply_done", 1)) == 1
            operations = await client.operations(lb["id"])
            assert [(op["status"], op["agent_id"]) for op in operations] == [
                ("SUCCEEDED", "agent-second")
            ]
            results = await isolation.fetch(
                "SELECT count(*) AS n FROM operations WHERE loadbalancer_id = $1", lb["id"]
            )
            assert results[0]["n"] == 1
