"""``lbaas-agent``: run the agent until SIGTERM or SIGINT, then stop gracefully."""

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from agent_service.service import Agent
from agent_service.settings import AgentSettings
from shared.logging import configure_logging
from shared.settings import invalid_settings
from shared.tracing import configure_tracing, shutdown_tracing

log = logging.getLogger(__name__)

_ENVIRONMENT = """\
settings (environment):
  LBAAS_AMQP_URL               broker URL (amqp://guest:guest@127.0.0.1:5672/)
  LBAAS_QUEUE_PREFIX           exchange and queue name prefix (lbaas)
  LBAAS_COMMAND_SHARDS         command shard queues (4); same value as the API
  LBAAS_DELIVERY_LIMIT         deliveries of a command before it is dead-lettered (3)
  LBAAS_AGENT_ID               this agent's name in results (<hostname>-<pid>)
  LBAAS_AGENT_PREFETCH         unacknowledged commands per shard queue (32)
  LBAAS_DRIVER_POLL_INTERVAL   seconds between polls of an asynchronous device (0.2)
  LBAAS_DRIVER_TIMEOUT         seconds a command may spend in its driver (600)
  LBAAS_RESULT_PUBLISH_TIMEOUT seconds to wait for the broker to confirm a result (10)
  LBAAS_SHUTDOWN_GRACE         seconds in-flight commands get at shutdown (10)
  LBAAS_STATUS_INTERVAL        seconds between reads of each device (5)
  LBAAS_ANNOUNCE_INTERVAL      seconds between announcements of the providers (60)
  LBAAS_AGENT_METRICS_HOST     where Prometheus metrics are served (127.0.0.1)
  LBAAS_AGENT_METRICS_PORT     serve Prometheus metrics on this port (unset: none)
  LBAAS_DEVICE_CA_FILE         CA bundle for https:// devices
  LBAAS_DEVICE_CLIENT_CERT, LBAAS_DEVICE_CLIENT_KEY  client certificate for mutual TLS
  LBAAS_SIM_STATE_DIR          folder for the sim driver's appliances (in memory if unset)
  LBAAS_LOG_LEVEL              DEBUG, INFO, WARNING, ERROR (INFO)
"""


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lbaas-agent",
        description="Apply load-balancer commands from RabbitMQ to devices through drivers.",
        epilog=_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser.parse_args(argv)


async def run(settings: AgentSettings) -> None:
    """Run an agent until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    agent = Agent(settings)
    agent.start()
    await stop.wait()
    log.info("stop requested", extra={"agent_id": settings.agent_id})
    await agent.stop()


def main(argv: Sequence[str] | None = None) -> None:
    _parse_arguments(argv)
    try:
        settings = AgentSettings()
    except ValidationError as exc:
        sys.exit(invalid_settings("lbaas-agent", exc))
    configure_logging(settings.log_level)
    configure_tracing("lbaas-agent")
    try:
        asyncio.run(run(settings))
    finally:
        shutdown_tracing()
