"""Device bodies (admin extension)."""

import re
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field, SecretStr, Strict

from api_service.schemas.common import PageLink
from api_service.schemas.fields import (
    CIDR,
    INTEGRAL,
    DriverName,
    RequestBody,
    StrictBool,
    Timestamp,
    documented,
    network,
)
from shared.status import OperatingStatus

_DEVICE_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,254}\Z")
_URL_CHARS = r"[A-Za-z0-9\-._~:/?#\[\]@!&'()*+,;=%]"
_MANAGEMENT_URL = re.compile(
    rf"\A[A-Za-z][A-Za-z0-9+.\-]*://[A-Za-z0-9\-._~!&'()*+,;=%:]+(?:[/?#]{_URL_CHARS}*)?\Z"
)
"""``scheme://host[:port][/path][?query][#fragment]``, without ``user:password@`` (credentials
go in the write-only ``management_secret``); IPv6 hosts in brackets are not supported."""
_USERINFO = re.compile(r"\A[^/]*://[^/?#]*@")


def _device_name(value: str) -> str:
    if not _DEVICE_NAME.fullmatch(value):
        raise ValueError(
            "must be 1-255 characters of A-Z a-z 0-9 _ . - starting with a letter or digit"
        )
    return value


def _management_url(value: str) -> str:
    if _USERINFO.match(value):
        raise ValueError(
            "must not hold credentials (user:password@): give them as management_secret, "
            "which is never shown"
        )
    if len(value) > 2048 or not _MANAGEMENT_URL.fullmatch(value):
        raise ValueError(
            "must be an absolute URL of at most 2048 URL characters, with a host, such as "
            "sim://appliance-1 or https://10.0.0.2:8443"
        )
    return value


DeviceName = Annotated[str, Strict(), documented(_DEVICE_NAME), AfterValidator(_device_name)]
ManagementUrl = Annotated[
    str,
    Strict(),
    Field(max_length=2048),
    documented(_MANAGEMENT_URL),
    AfterValidator(_management_url),
]
_SECRET = re.compile(r"\A[!-~]{16,1024}\Z")


def _secret(value: SecretStr) -> SecretStr:
    if not _SECRET.fullmatch(value.get_secret_value()):
        raise ValueError("must be 16-1024 visible ASCII characters (no spaces or controls)")
    return value


ManagementSecret = Annotated[
    SecretStr,
    Field(
        description="What the agent authenticates to the device with (write-only).",
        json_schema_extra={"pattern": "^[!-~]{16,1024}$", "writeOnly": True},
    ),
    AfterValidator(_secret),
]
Cidr = Annotated[str, Strict(), CIDR, AfterValidator(network)]
Capacity = Annotated[int, Strict(), Field(ge=1, le=1_000_000), INTEGRAL]


VipSubnetIds = Annotated[
    list[UUID],
    Field(
        max_length=100,
        description="The subnets (/v2.0/subnets) it serves, where the VIPs of the load "
        "balancers placed on it come from; the subnet of its vip_cidr (made if missing) is "
        "always one.",
    ),
]


_DEVICE_GROUP = re.compile(r"\A[A-Za-z0-9_.:-]{1,64}\Z")


def _device_group(value: str) -> str:
    if not _DEVICE_GROUP.fullmatch(value):
        raise ValueError("must be 1-64 characters of A-Z a-z 0-9 _ . : -")
    return value


DeviceGroup = Annotated[
    str,
    Strict(),
    documented(_DEVICE_GROUP),
    Field(
        description="The group flavors and availability zones place load balancers by "
        '(their profile\'s "device_group").'
    ),
    AfterValidator(_device_group),
]


class DeviceCreate(RequestBody):
    name: DeviceName
    driver: DriverName
    management_url: ManagementUrl
    management_secret: ManagementSecret | None = None
    vip_cidr: Cidr
    vip_subnet_ids: VipSubnetIds = Field(default_factory=list)
    capacity: Capacity = 100
    enabled: StrictBool = True
    device_group: DeviceGroup | None = None


class DeviceUpdate(RequestBody):
    name: DeviceName | None = None
    driver: DriverName | None = None
    management_url: ManagementUrl | None = None
    management_secret: ManagementSecret | None = None
    vip_cidr: Cidr | None = None
    vip_subnet_ids: VipSubnetIds | None = None
    capacity: Capacity | None = None
    enabled: StrictBool | None = None
    device_group: DeviceGroup | None = None


class DeviceCreateBody(RequestBody):
    device: DeviceCreate


class DeviceUpdateBody(RequestBody):
    device: DeviceUpdate


class DeviceOut(BaseModel):
    id: UUID
    name: str
    driver: str
    management_url: str
    has_management_secret: bool = Field(description="The secret itself is never shown.")
    vip_cidr: str
    vip_subnet_ids: list[UUID] = Field(description="Every subnet it serves.")
    capacity: int
    enabled: bool
    device_group: str | None
    operating_status: OperatingStatus | None = Field(
        description="ONLINE or OFFLINE as its agent last saw it; none before its first report."
    )
    loadbalancer_count: int
    created_at: Timestamp
    updated_at: Timestamp


class DeviceBody(BaseModel):
    device: DeviceOut


class DeviceList(BaseModel):
    devices: list[DeviceOut]
    devices_links: list[PageLink] = Field(default_factory=list)


class ResyncOperation(BaseModel):
    id: UUID
    loadbalancer_id: UUID


class ResyncOut(BaseModel):
    device_id: UUID
    operations: list[ResyncOperation] = Field(description="One per load balancer published again.")
    skipped: list[UUID] = Field(description="Load balancers with a change in flight.")


class ResyncBody(BaseModel):
    resync: ResyncOut
