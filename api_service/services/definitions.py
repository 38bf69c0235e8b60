"""What operators define and projects choose: flavors, availability zones and their profiles.

Each is declared once (:class:`Definition`): its table, what it is called, how its
path names it (id, or name for availability zones), what it refers to and what refers
to it. :class:`DefinitionService` does the rest the same way for all four: changes are
synchronous (no device is involved), a duplicate name is a 409, a reference to an
unknown object a 404 naming the field, and an object something still uses cannot be
deleted (409). A profile's provider must be one the agents have announced, or have
devices, and its options (``flavor_data``) keys the provider takes.
"""

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import exists, literal, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from api_service.db.engine import SessionFactory
from api_service.db.listing import ListQuery, Page, fetch_page
from api_service.db.models import (
    AvailabilityZone,
    AvailabilityZoneProfile,
    Device,
    Flavor,
    FlavorProfile,
    LoadBalancer,
    OperatorDefined,
    Provider,
)
from api_service.errors import Conflict, Invalid, NotFound
from api_service.services.providers import availability_zone_options, flavor_options
from api_service.services.resource import Filters

M = TypeVar("M", bound=OperatorDefined)


@dataclass(frozen=True)
class Reference:
    """A column of one definition that names another (a flavor's profile)."""

    column: str
    target: type[OperatorDefined]
    kind: str


@dataclass(frozen=True)
class UsedBy:
    """A column elsewhere that names a definition: while a row does, it stays."""

    column: InstrumentedAttribute[Any]
    key: str
    """The definition's attribute the column holds (``id``, or ``name``)."""
    what: str


@dataclass(frozen=True)
class Definition(Generic[M]):
    model: type[M]
    kind: str
    """As an error names it: "Flavor", "Availability zone"."""
    key: str
    """What the path names it by: ``id`` or ``name``."""
    filters: Filters
    references: tuple[Reference, ...] = ()
    used_by: tuple[UsedBy, ...] = ()
    fixed: frozenset[str] = field(default_factory=frozenset)
    """What an update may not change while anything uses the object."""
    options: tuple[str, Callable[[Provider | None], Mapping[str, str]]] | None = None
    """A profile's options (a JSON object in this column) and the keys its provider takes."""


FLAVOR_PROFILES = Definition(
    FlavorProfile,
    "Flavor profile",
    "id",
    {"id": UUID, "name": str, "provider_name": str},
    used_by=(UsedBy(Flavor.flavor_profile_id, "id", "flavors"),),
    fixed=frozenset({"provider_name", "flavor_data"}),
    options=("flavor_data", flavor_options),
)
FLAVORS = Definition(
    Flavor,
    "Flavor",
    "id",
    {"id": UUID, "name": str, "flavor_profile_id": UUID},
    references=(Reference("flavor_profile_id", FlavorProfile, "Flavor profile"),),
    used_by=(UsedBy(LoadBalancer.flavor_id, "id", "load balancers"),),
)
AVAILABILITY_ZONE_PROFILES = Definition(
    AvailabilityZoneProfile,
    "Availability zone profile",
    "id",
    {"id": UUID, "name": str, "provider_name": str},
    used_by=(UsedBy(AvailabilityZone.availability_zone_profile_id, "id", "availability zones"),),
    fixed=frozenset({"provider_name", "availability_zone_data"}),
    options=("availability_zone_data", availability_zone_options),
)
AVAILABILITY_ZONES = Definition(
    AvailabilityZone,
    "Availability zone",
    "name",
    {"name": str, "availability_zone_profile_id": UUID},
    references=(
        Reference(
            "availability_zone_profile_id", AvailabilityZoneProfile, "Availability zone profile"
        ),
    ),
    used_by=(UsedBy(LoadBalancer.availability_zone, "name", "load balancers"),),
)


DEFINITIONS: tuple[Definition[Any], ...] = (
    FLAVOR_PROFILES,
    FLAVORS,
    AVAILABILITY_ZONE_PROFILES,
    AVAILABILITY_ZONES,
)


@dataclass(frozen=True)
class DefinitionService(Generic[M]):
    """Create, read, page, update and delete one kind of definition, synchronously."""

    sessions: SessionFactory
    definition: Definition[M]

    async def create(self, body: BaseModel) -> M:
        values = body.model_dump()
        async with self.sessions() as session, session.begin():
            await self._check(session, values)
            obj = self.definition.model(**values)
            session.add(obj)
            await self._flush(session, values["name"])
        return obj

    async def get(self, key: object) -> M:
        async with self.sessions() as session:
            return await self._load(session, key)

    async def page(self, query: ListQuery) -> Page[M]:
        async with self.sessions() as session:
            return await fetch_page(
                session,
                self.definition.model,
                query,
                scope=None,
                filterable=self.definition.filters,
                sortable=frozenset(self.definition.filters) - {"id"},
            )

    async def update(self, key: object, body: BaseModel) -> M:
        """Change what ``body`` gives; a field sent as null has no default to go back to."""
        values = body.model_dump(exclude_unset=True)
        for name, value in values.items():
            if value is None:
                raise Invalid(name, "cannot be null: leave it out to keep it")
        async with self.sessions() as session, session.begin():
            obj = await self._load(session, key, for_update=True)
            changed = {n for n, v in values.items() if getattr(obj, n) != v}
            if changed & self.definition.fixed and await self._user(session, obj):
                names = ", ".join(sorted(changed & self.definition.fixed))
                raise Conflict(f"{self._named(key)} is in use: its {names} cannot change.")
            await self._check(session, {**_columns(obj), **values})
            for name, value in values.items():
                setattr(obj, name, value)
            await self._flush(session, values.get("name", obj.name))
        return obj

    async def delete(self, key: object) -> None:
        async with self.sessions() as session, session.begin():
            obj = await self._load(session, key, for_update=True)
            user = await self._user(session, obj)
            if user is not None:
                raise Conflict(f"{self._named(key)} is in use by {user}.")
            await session.delete(obj)

    def _named(self, key: object) -> str:
        return f"{self.definition.kind} {key}"

    async def _load(self, session: AsyncSession, key: object, *, for_update: bool = False) -> M:
        column = getattr(self.definition.model, self.definition.key)
        query = select(self.definition.model).where(column == key)
        obj = await session.scalar(query.with_for_update() if for_update else query)
        if obj is None:
            raise NotFound(self.definition.kind, key)
        return obj

    async def _check(self, session: AsyncSession, values: Mapping[str, Any]) -> None:
        """The objects ``values`` refer to exist; a profile's provider takes its options."""
        for reference in self.definition.references:
            target = values[reference.column]
            found = await session.scalar(select(literal(True)).where(reference.target.id == target))
            if not found:
                raise NotFound(reference.kind, target, field=reference.column)
        if self.definition.options is not None:
            await _check_options(session, values, *self.definition.options)

    async def _user(self, session: AsyncSession, obj: M) -> str | None:
        """What still uses ``obj``, if anything."""
        for use in self.definition.used_by:
            held = getattr(obj, use.key)
            if await session.scalar(select(exists().where(use.column == held))):
                return use.what
        return None

    async def _flush(self, session: AsyncSession, name: str) -> None:
        try:
            await session.flush()
        except IntegrityError:
            raise Conflict(f"A {self.definition.kind.lower()} named {name!r} exists.") from None


async def _check_options(
    session: AsyncSession,
    values: Mapping[str, Any],
    column: str,
    options_of: Callable[[Provider | None], Mapping[str, str]],
) -> None:
    """A profile's provider has announced itself or has devices, and takes its options."""
    name = values["provider_name"]
    provider = await session.get(Provider, name)
    if provider is None and not await session.scalar(select(exists().where(Device.driver == name))):
        raise Invalid("provider_name", f"provider {name!r} is not available")
    allowed = options_of(provider)
    unknown = sorted(set(json.loads(values[column])) - set(allowed))
    if unknown:
        raise Invalid(
            column,
            f"provider {name!r} takes no option {', '.join(map(repr, unknown))}; it takes "
            + ", ".join(sorted(allowed)),
        )


def _columns(obj: OperatorDefined) -> dict[str, Any]:
    table = sa_inspect(obj).mapper.columns
    return {column.key: getattr(obj, column.key) for column in table}


@dataclass(frozen=True)
class Placement:
    """Where a load balancer may go, from what its create chose: the provider it names (or
    its flavor's or zone's; None: the default), and the device group they name, if any."""

    provider: str | None
    device_group: str | None


async def placement_of(
    session: AsyncSession,
    provider: str | None,
    flavor_id: UUID | None,
    availability_zone: str | None,
) -> Placement:
    """The placement a create asks for; the flavor and the zone must be enabled and agree
    with each other and with the provider it names."""
    chosen = await _chosen(session, flavor_id, availability_zone, enabled_only=True)
    wanted = provider or next((named for _, named, _ in chosen), None)
    for field_name, named, _ in chosen:
        if named != wanted:
            raise Invalid(field_name, f"it is for provider {named!r}, not {wanted!r}")
    return Placement(wanted, _device_group(chosen))


async def device_group_of(
    session: AsyncSession, flavor_id: UUID | None, availability_zone: str | None
) -> str | None:
    """The device group a load balancer's flavor and zone keep it in (on a failover too,
    even once they are disabled)."""
    return _device_group(await _chosen(session, flavor_id, availability_zone, enabled_only=False))


Chosen = list[tuple[str, str, str]]
"""(field, provider, options) of a create's flavor and zone."""


async def _chosen(
    session: AsyncSession,
    flavor_id: UUID | None,
    availability_zone: str | None,
    *,
    enabled_only: bool,
) -> Chosen:
    chosen: Chosen = []
    if flavor_id is not None:
        flavor = await session.get(Flavor, flavor_id)
        if flavor is None:
            raise NotFound("Flavor", flavor_id, field="flavor_id")
        if enabled_only and not flavor.enabled:
            raise Invalid("flavor_id", f"flavor {flavor_id} is disabled")
        profile = await session.get(FlavorProfile, flavor.flavor_profile_id)
        assert profile is not None  # a foreign key that restricts deletes
        chosen.append(("flavor_id", profile.provider_name, profile.flavor_data))
    if availability_zone is not None:
        zone = await session.scalar(
            select(AvailabilityZone).where(AvailabilityZone.name == availability_zone)
        )
        if zone is None:
            raise NotFound("Availability zone", availability_zone, field="availability_zone")
        if enabled_only and not zone.enabled:
            raise Invalid("availability_zone", f"availability zone {availability_zone} is disabled")
        zone_profile = await session.get(AvailabilityZoneProfile, zone.availability_zone_profile_id)
        assert zone_profile is not None
        chosen.append(
            ("availability_zone", zone_profile.provider_name, zone_profile.availability_zone_data)
        )
    return chosen


def _device_group(chosen: Chosen) -> str | None:
    groups = {
        str(group)
        for _, _, options in chosen
        if (group := json.loads(options).get("device_group")) is not None
    }
    if len(groups) > 1:
        raise Invalid(
            "availability_zone",
            f"its device group and the flavor's differ ({', '.join(sorted(groups))})",
        )
    return next(iter(groups), None)
