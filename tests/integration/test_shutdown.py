"""The agent stops on SIGTERM whatever its broker connection is doing."""

import asyncio
import os
from pathlib import Path

from tests.support.stack import Agent


async def test_the_agent_stops_while_its_broker_connection_is_being_set_up(log_dir: Path) -> None:
    """A broker that accepts the connection and never answers: the handshake is in progress
    when the agent is told to stop."""
    accepted = asyncio.Event()
    held: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        accepted.set()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = {
        **os.environ,
        "LBAAS_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{port}/",
        "LBAAS_QUEUE_PREFIX": "lbaas-silent-broker",
    }
    agent = Agent(env, log_dir, "agent-silent-broker")
    try:
        agent.start()
        await asyncio.wait_for(accepted.wait(), timeout=30)
        assert agent.stop(timeout=10)
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
