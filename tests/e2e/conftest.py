"""A HAProxy device for each module that carries real traffic, registered in the session's API;
the session agent's providers, announced."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import ADMIN_TOKEN, LbaasClient
from tests.support.haproxy import Device, running_device
from tests.support.stack import Agent, Api


@pytest.fixture(scope="module")
async def device(log_dir: Path) -> AsyncIterator[Device]:
    async with running_device(log_dir) as device:
        yield device


@pytest.fixture(scope="module")
async def registered(
    device: Device, client_factory: Callable[[str | None], LbaasClient]
) -> dict[str, Any]:
    """The module's device as the API shows it."""
    return await client_factory(None).create_device(**device.registration())


@pytest.fixture
async def announced(api: Api, agent: Agent) -> None:
    """Once the session's agent announced its providers: for options beyond the baseline."""
    await agent.wait_announced(api.url, ADMIN_TOKEN)
