"""Operating statuses rolled up from members to pool, listener and load balancer."""

import pytest

from api_service.services.health import listener_status, loadbalancer_status, pool_status
from shared.status import OperatingStatus

ONLINE, OFFLINE, ERROR, DEGRADED, DRAINING, NO_MONITOR = (
    OperatingStatus.ONLINE,
    OperatingStatus.OFFLINE,
    OperatingStatus.ERROR,
    OperatingStatus.DEGRADED,
    OperatingStatus.DRAINING,
    OperatingStatus.NO_MONITOR,
)


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ([], ONLINE),
        ([ONLINE, ONLINE], ONLINE),
        ([ONLINE, ERROR], DEGRADED),
        ([ERROR, ERROR], ERROR),
        ([ERROR, OFFLINE], ERROR),
        ([DRAINING, NO_MONITOR], ONLINE),
        ([OFFLINE, OFFLINE], ONLINE),
    ],
)
def test_pool(members: list[OperatingStatus], expected: OperatingStatus) -> None:
    assert pool_status(True, members) is expected
    assert pool_status(False, members) is OFFLINE


def test_listener_follows_its_pool_unless_it_is_off() -> None:
    assert listener_status(True, ONLINE, DEGRADED) is DEGRADED
    assert listener_status(True, ONLINE, ERROR) is ERROR
    assert listener_status(True, None, None) is ONLINE
    assert listener_status(True, OFFLINE, ONLINE) is OFFLINE
    assert listener_status(False, ONLINE, ERROR) is OFFLINE


def test_loadbalancer_is_degraded_by_any_listener_and_in_error_when_all_are() -> None:
    assert loadbalancer_status(True, [ONLINE, ONLINE]) is ONLINE
    assert loadbalancer_status(True, [ONLINE, DEGRADED]) is DEGRADED
    assert loadbalancer_status(True, [ONLINE, ERROR]) is DEGRADED
    assert loadbalancer_status(True, [ERROR, ERROR, OFFLINE]) is ERROR
    assert loadbalancer_status(True, []) is ONLINE
    assert loadbalancer_status(False, [ONLINE]) is OFFLINE
