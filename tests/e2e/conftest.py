"""A HAProxy device for each module that carries real traffic, registered in the session's API."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.client import LbaasClient
from tests.support.haproxy import Device, running_device


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
