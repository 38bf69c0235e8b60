"""Allow-lists of the HTTP bodies: what may reach a device config."""

from typing import Any

import pytest
from pydantic import ValidationError

from api_service.schemas.devices import DeviceCreate
from api_service.schemas.loadbalancers import LoadBalancerCreate


@pytest.mark.parametrize(
    "name",
    ["a\nb", "a\rb", "nul\x00", "bidi\u202e", "line\u2028sep", "x" * 256, 7],
)
def test_names_with_control_characters_or_too_long_are_refused(name: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        LoadBalancerCreate(name=name)
    assert caught.value.errors()[0]["loc"] == ("name",)


@pytest.mark.parametrize("name", ["web", "my shop #1", "café", "x" * 255, ""])
def test_ordinary_names_are_accepted(name: str) -> None:
    assert LoadBalancerCreate(name=name).name == name


def test_vip_is_normalised() -> None:
    assert LoadBalancerCreate(vip_address="2001:DB8::0001").vip_address == "2001:db8::1"
    with pytest.raises(ValidationError):
        LoadBalancerCreate(vip_address="10.0.0.1\n")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("management_url", "sim://a\n"),
        ("management_url", "not a url"),
        ("management_url", "relative"),
        ("vip_cidr", "10.0.0.1/24"),
        ("vip_cidr", "10.0.0.0/33"),
        ("driver", "Sim"),
        ("name", "-x"),
        ("capacity", 0),
        ("capacity", "5"),
        ("enabled", "true"),
    ],
)
def test_device_fields_are_checked(field: str, value: Any) -> None:
    body: dict[str, Any] = {
        "name": "d1",
        "driver": "sim",
        "management_url": "sim://a?latency=1",
        "vip_cidr": "10.0.0.0/24",
    }
    DeviceCreate(**body)
    with pytest.raises(ValidationError) as caught:
        DeviceCreate(**{**body, field: value})
    assert caught.value.errors()[0]["loc"][0] == field
