"""An agent announces its providers on the broker: first, before it consumes commands, and then
every ``LBAAS_ANNOUNCE_INTERVAL`` (read here straight from the queue, with no API running)."""

from pathlib import Path

import aio_pika

from agent_service.drivers.haproxy.render import CAPABILITIES
from shared.capabilities import EVERY_OPTION
from shared.messages import ProviderAnnouncement
from tests.support.stack import Agent, eventually, isolated, running


async def test_an_agent_announces_before_it_consumes_and_again_each_interval(
    log_dir: Path,
) -> None:
    async with isolated() as isolation:
        agent = Agent(isolation.agent_env(announce_interval=0.3), log_dir, "agent-announcing")
        received: list[ProviderAnnouncement] = []
        async with running(agent):
            agent.start()
            connection = await aio_pika.connect(isolation.amqp_url)
            async with connection:
                channel = await connection.channel()
                queue = await channel.get_queue(isolation.names.providers_queue, ensure=False)

                async def three() -> bool | None:
                    message = await queue.get(fail=False, no_ack=True)
                    if message is not None:
                        received.append(ProviderAnnouncement.model_validate_json(message.body))
                    return True if len(received) >= 3 else None

                await eventually(three, what="three announcements")
            log = agent.log()

    assert log.index("announced providers haproxy, noop, sim") < log.index("consuming")
    assert {a.agent_id for a in received} == {"agent-announcing"}
    times = [a.announced_at for a in received]
    assert times == sorted(times) and len(set(times)) == 3
    declared = {p.name: p.capabilities for p in received[0].providers}
    assert declared == {"haproxy": CAPABILITIES, "noop": EVERY_OPTION, "sim": EVERY_OPTION}
