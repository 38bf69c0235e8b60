"""Bodies of flavors, availability zones and their profiles, as Octavia has them.

Profiles (admin only) hold a provider's options as a JSON object in a string
(``flavor_data``, ``availability_zone_data``); flavors and availability zones
(readable by every project) name a profile. An availability zone is known by its
name, which is also its path.
"""

import json
import re
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict

from api_service.schemas.common import LISTED, PageLink
from api_service.schemas.fields import (
    DriverName,
    RequestBody,
    StrictBool,
    Text255,
    documented,
    never_null,
)

_ZONE_NAME = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,254}\Z")
_OPTION = re.compile(r"\A[a-z][a-z0-9_]{0,63}\Z")
_OPTION_VALUE = re.compile(r"\A[A-Za-z0-9_.:-]{0,255}\Z")
MAX_OPTIONS = 32


def _zone_name(value: str) -> str:
    if not _ZONE_NAME.fullmatch(value):
        raise ValueError(
            "must be 1-255 characters of A-Z a-z 0-9 _ . - starting with a letter or digit"
        )
    return value


def provider_options(value: str) -> str:
    """A JSON object of at most 32 options: lower-case names, scalar values (strings of
    A-Z a-z 0-9 _ . : -, numbers, booleans). Which names a provider takes is checked
    against its announced capabilities, not here."""
    try:
        options = json.loads(value)
    except ValueError:
        raise ValueError('must be a JSON object, such as {"device_group": "gold"}') from None
    if not isinstance(options, dict) or len(options) > MAX_OPTIONS:
        raise ValueError(f"must be a JSON object of at most {MAX_OPTIONS} options")
    for name, option in options.items():
        if not _OPTION.fullmatch(name):
            raise ValueError(f"option {name!r}: names are lower-case letters, digits and _")
        scalar = isinstance(option, (bool, int, float)) or (
            isinstance(option, str) and _OPTION_VALUE.fullmatch(option)
        )
        if not scalar:
            raise ValueError(
                f"option {name!r}: a value is a number, a boolean or a string of "
                "A-Z a-z 0-9 _ . : - (at most 255)"
            )
    return value


ZoneName = Annotated[str, Strict(), documented(_ZONE_NAME), AfterValidator(_zone_name)]
ProviderOptions = Annotated[
    str,
    Strict(),
    Field(max_length=4096, examples=['{"device_group": "gold"}']),
    AfterValidator(provider_options),
]


class FlavorProfileCreate(RequestBody):
    name: Text255
    provider_name: DriverName
    flavor_data: ProviderOptions


class FlavorProfileUpdate(RequestBody):
    model_config = ConfigDict(json_schema_extra=never_null("name", "provider_name", "flavor_data"))

    name: Text255 | None = None
    provider_name: DriverName | None = None
    flavor_data: ProviderOptions | None = None


class FlavorProfileOut(BaseModel):
    id: UUID
    name: str
    provider_name: str
    flavor_data: str


class FlavorProfileListItem(FlavorProfileOut):
    """As a list shows it: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class FlavorProfileCreateBody(RequestBody):
    flavorprofile: FlavorProfileCreate


class FlavorProfileUpdateBody(RequestBody):
    flavorprofile: FlavorProfileUpdate


class FlavorProfileBody(BaseModel):
    flavorprofile: FlavorProfileOut


class FlavorProfileList(BaseModel):
    flavorprofiles: list[FlavorProfileListItem]
    flavorprofiles_links: list[PageLink] = Field(default_factory=list)


class FlavorCreate(RequestBody):
    name: Text255
    description: Text255 = ""
    enabled: StrictBool = True
    flavor_profile_id: UUID


class FlavorUpdate(RequestBody):
    model_config = ConfigDict(json_schema_extra=never_null("name", "description", "enabled"))

    name: Text255 | None = None
    description: Text255 | None = None
    enabled: StrictBool | None = None


class FlavorOut(BaseModel):
    id: UUID
    name: str
    description: str
    enabled: bool
    flavor_profile_id: UUID


class FlavorListItem(FlavorOut):
    """As a list shows it: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class FlavorCreateBody(RequestBody):
    flavor: FlavorCreate


class FlavorUpdateBody(RequestBody):
    flavor: FlavorUpdate


class FlavorBody(BaseModel):
    flavor: FlavorOut


class FlavorList(BaseModel):
    flavors: list[FlavorListItem]
    flavors_links: list[PageLink] = Field(default_factory=list)


class AvailabilityZoneProfileCreate(RequestBody):
    name: Text255
    provider_name: DriverName
    availability_zone_data: ProviderOptions


class AvailabilityZoneProfileUpdate(RequestBody):
    model_config = ConfigDict(
        json_schema_extra=never_null("name", "provider_name", "availability_zone_data")
    )

    name: Text255 | None = None
    provider_name: DriverName | None = None
    availability_zone_data: ProviderOptions | None = None


class AvailabilityZoneProfileOut(BaseModel):
    id: UUID
    name: str
    provider_name: str
    availability_zone_data: str


class AvailabilityZoneProfileListItem(AvailabilityZoneProfileOut):
    """As a list shows it: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class AvailabilityZoneProfileCreateBody(RequestBody):
    availability_zone_profile: AvailabilityZoneProfileCreate


class AvailabilityZoneProfileUpdateBody(RequestBody):
    availability_zone_profile: AvailabilityZoneProfileUpdate


class AvailabilityZoneProfileBody(BaseModel):
    availability_zone_profile: AvailabilityZoneProfileOut


class AvailabilityZoneProfileList(BaseModel):
    availability_zone_profiles: list[AvailabilityZoneProfileListItem]
    availability_zone_profiles_links: list[PageLink] = Field(default_factory=list)


class AvailabilityZoneCreate(RequestBody):
    name: ZoneName
    description: Text255 = ""
    enabled: StrictBool = True
    availability_zone_profile_id: UUID


class AvailabilityZoneUpdate(RequestBody):
    model_config = ConfigDict(json_schema_extra=never_null("description", "enabled"))

    description: Text255 | None = None
    enabled: StrictBool | None = None


class AvailabilityZoneOut(BaseModel):
    name: str
    description: str
    enabled: bool
    availability_zone_profile_id: UUID


class AvailabilityZoneListItem(AvailabilityZoneOut):
    """As a list shows it: every field, or with ``fields=`` only those named."""

    model_config = LISTED


class AvailabilityZoneCreateBody(RequestBody):
    availability_zone: AvailabilityZoneCreate


class AvailabilityZoneUpdateBody(RequestBody):
    availability_zone: AvailabilityZoneUpdate


class AvailabilityZoneBody(BaseModel):
    availability_zone: AvailabilityZoneOut


class AvailabilityZoneList(BaseModel):
    availability_zones: list[AvailabilityZoneListItem]
    availability_zones_links: list[PageLink] = Field(default_factory=list)
