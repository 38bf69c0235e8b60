"""Device bodies (admin extension)."""

import re
from datetime import datetime
from ipaddress import ip_network
from typing import Annotated
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, Strict

from api_service.schemas.fields import DriverName, RequestBody, StrictBool, StrictInt

_DEVICE_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,254}\Z")
_URL_CHARS = re.compile(r"\A[A-Za-z0-9\-._~:/?#\[\]@!&'()*+,;=%]{1,2048}\Z")


def _device_name(value: str) -> str:
    if not _DEVICE_NAME.fullmatch(value):
        raise ValueError(
            "must be 1-255 characters of A-Z a-z 0-9 _ . - starting with a letter or digit"
        )
    return value


def _management_url(value: str) -> str:
    if not _URL_CHARS.fullmatch(value):
        raise ValueError("must be a URL without spaces or control characters")
    parts = urlsplit(value)
    if not parts.scheme or not (parts.netloc or parts.path):
        raise ValueError("must be an absolute URL such as sim://appliance-1 or https://10.0.0.2")
    return value


def _cidr(value: str) -> str:
    try:
        return str(ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a network in CIDR notation ({exc})") from None


DeviceName = Annotated[str, Strict(), AfterValidator(_device_name)]
ManagementUrl = Annotated[str, Strict(), AfterValidator(_management_url)]
Cidr = Annotated[str, Strict(), AfterValidator(_cidr)]
Capacity = Annotated[StrictInt, Field(ge=1, le=1_000_000)]


class DeviceCreate(RequestBody):
    name: DeviceName
    driver: DriverName
    management_url: ManagementUrl
    vip_cidr: Cidr
    capacity: Capacity = 100
    enabled: StrictBool = True


class DeviceUpdate(RequestBody):
    name: DeviceName | None = None
    driver: DriverName | None = None
    management_url: ManagementUrl | None = None
    vip_cidr: Cidr | None = None
    capacity: Capacity | None = None
    enabled: StrictBool | None = None


class DeviceCreateBody(RequestBody):
    device: DeviceCreate


class DeviceUpdateBody(RequestBody):
    device: DeviceUpdate


class DeviceOut(BaseModel):
    id: UUID
    name: str
    driver: str
    management_url: str
    vip_cidr: str
    capacity: int
    enabled: bool
    operating_status: str | None
    loadbalancer_count: int
    created_at: datetime
    updated_at: datetime


class DeviceBody(BaseModel):
    device: DeviceOut


class DeviceList(BaseModel):
    devices: list[DeviceOut]
    devices_links: list[dict[str, str]] = Field(default_factory=list)
