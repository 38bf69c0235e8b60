"""Fixtures: one isolated database + queue prefix and one API + agent pair for the run.

Tests that need other settings, or that kill and restart processes, start
their own stack with :func:`tests.support.stack` helpers.
"""

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.client import ADMIN_TOKEN, LbaasClient, authenticated
from tests.support.haproxy import Backend, serving
from tests.support.stack import Agent, Api, Isolation


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim")


@pytest.fixture(scope="session")
def noop_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the noop driver of the session's agent writes every spec it applies."""
    return tmp_path_factory.mktemp("noop")


@pytest.fixture(scope="session")
async def isolation() -> AsyncIterator[Isolation]:
    isolation = Isolation()
    await isolation.create()
    yield isolation
    await isolation.drop()


@pytest.fixture(scope="session")
async def api(isolation: Isolation, log_dir: Path, sim_dir: Path) -> AsyncIterator[Api]:
    api = Api(isolation.env(), log_dir)
    api.start()
    await api.wait_ready("/readyz")
    yield api
    assert api.stop(), api.log()[-3000:]


@pytest.fixture(scope="session")
def agent(
    isolation: Isolation, log_dir: Path, sim_dir: Path, noop_dir: Path, api: Api
) -> Iterator[Agent]:
    agent = Agent(
        isolation.agent_env(sim_state_dir=sim_dir, noop_record_dir=noop_dir, status_interval=0.5),
        log_dir,
        "agent-main",
    )
    agent.start()
    yield agent
    assert agent.stop(), agent.log()[-3000:]


@pytest.fixture
async def client(api: Api, agent: Agent) -> AsyncIterator[LbaasClient]:
    async with authenticated(api.url, timeout=10) as http:
        yield LbaasClient(http)


@pytest.fixture(scope="session")
async def client_factory(
    api: Api, agent: Agent
) -> AsyncIterator[Callable[[str | None], LbaasClient]]:
    """Clients of the session's API with a given token (None: the admin's), closed at the end."""
    opened: list[httpx.AsyncClient] = []

    def client_with(token: str | None) -> LbaasClient:
        http = authenticated(api.url, token or ADMIN_TOKEN, timeout=10)
        opened.append(http)
        return LbaasClient(http)

    yield client_with
    for http in opened:
        await http.aclose()


@pytest.fixture
async def backends() -> AsyncIterator[list[Backend]]:
    """Three HTTP servers on 127.0.0.1 answering b0, b1 and b2."""
    started = [Backend(f"b{i}") for i in range(3)]
    async with serving(started):
        yield started
