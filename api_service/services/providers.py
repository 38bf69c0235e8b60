"""Providers: what the agents announced of their drivers, and the check of a change against it.

A change (a create or an update of any object, a single-call tree create) is refused
when one of the objects it changes asks its load balancer's provider for an option the
provider did not announce (:class:`~api_service.errors.UnsupportedOption`, as Octavia:
"Provider 'haproxy' does not support a requested option: …"). A provider that has
devices but has not announced yet is held to ``shared.capabilities.BASELINE``: what
every driver of this service supports, so a load balancer can be made before its agent
starts, and only the options beyond it wait for the announcement.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from api_service.db.engine import SessionFactory
from api_service.db.models import Device, Provider
from api_service.errors import NotFound, UnsupportedOption
from api_service.services.tree import Tree
from shared.capabilities import BASELINE, Capabilities
from shared.messages import LoadBalancerSpec, ProviderAnnouncement

PLACEMENT_OPTIONS = {
    "device_group": "Place the load balancer on the devices of this group (their "
    "device_group), and no other.",
}
"""What a flavor or availability zone profile of any provider may set: this service places
load balancers itself, whatever the driver."""


def flavor_options(provider: Provider | None) -> dict[str, str]:
    """The keys a flavor profile of ``provider`` may set: placement's and its own."""
    return {**PLACEMENT_OPTIONS, **(provider.flavor_capabilities if provider else {})}


def availability_zone_options(provider: Provider | None) -> dict[str, str]:
    """The keys an availability zone profile of ``provider`` may set."""
    own = provider.availability_zone_capabilities if provider else {}
    return {**PLACEMENT_OPTIONS, **own}


async def record_announcement(session: AsyncSession, announcement: ProviderAnnouncement) -> None:
    """Store each announced provider, replacing what an earlier announcement said of it (a
    redelivered older one changes nothing)."""
    declared_at = announcement.announced_at
    for declared in announcement.providers:
        values = {
            "description": declared.description,
            "capabilities": declared.capabilities.model_dump(mode="json"),
            "flavor_capabilities": declared.flavor_capabilities,
            "availability_zone_capabilities": declared.availability_zone_capabilities,
            "announced_by": announcement.agent_id,
            "announced_at": announcement.announced_at,
        }
        await session.execute(
            insert(Provider)
            .values(name=declared.name, **values)
            .on_conflict_do_update(
                index_elements=[Provider.name],
                set_=values,
                where=Provider.announced_at <= declared_at,
            )
        )


def changed_ids(tree: Tree) -> set[UUID]:
    """The objects the change at the tree's (already bumped) generation creates or updates."""
    generation = tree.lb.generation
    return {
        obj.id
        for obj in tree.objects()
        if obj.changed_generation == generation and not obj.deleting
    }


def require_supported(device: Device, spec: LoadBalancerSpec, changed: set[UUID]) -> None:
    """Raise :class:`UnsupportedOption` for the first option of a changed object of ``spec``
    that the device's provider does not support."""
    row = device.provider
    capabilities = BASELINE if row is None else Capabilities.model_validate(row.capabilities)
    unsupported = capabilities.first_unsupported(spec, changed)
    if unsupported is not None:
        raise UnsupportedOption(device.driver, unsupported.field, unsupported.option)


@dataclass(frozen=True)
class ProviderService:
    sessions: SessionFactory

    async def all(self) -> Sequence[Provider]:
        """Every announced provider, by name."""
        async with self.sessions() as session:
            return (await session.scalars(select(Provider).order_by(Provider.name))).all()

    async def get(self, name: str) -> Provider:
        async with self.sessions() as session:
            provider = await session.get(Provider, name)
        if provider is None:
            raise NotFound("Provider", name)
        return provider
