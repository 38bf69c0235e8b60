"""Provider bodies, as Octavia shows them: a name and a description, for the providers and for
the flavor and availability zone capabilities of each."""

from pydantic import BaseModel

from api_service.schemas.common import LISTED


class NamedDescription(BaseModel):
    """A provider, or a capability of one (a key its flavor or availability zone profiles may
    set), with what it is; ``fields=`` may leave either out."""

    model_config = LISTED

    name: str
    description: str


class ProviderList(BaseModel):
    providers: list[NamedDescription]


class FlavorCapabilityList(BaseModel):
    flavor_capabilities: list[NamedDescription]


class AvailabilityZoneCapabilityList(BaseModel):
    availability_zone_capabilities: list[NamedDescription]
