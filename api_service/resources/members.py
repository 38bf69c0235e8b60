"""Members: servers of a pool, unique by address and port in it; the whole list can be replaced
in one operation (matched on address and port)."""

from ipaddress import ip_address
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.listing import parse_address, parse_bool, parse_int
from api_service.db.models import Member, Pool, TreeObject
from api_service.errors import Conflict
from api_service.resources.common import common_fields, loadbalancer_via
from api_service.resources.pools import live_pool
from api_service.schemas.links import link
from api_service.schemas.members import (
    MemberBody,
    MemberCreate,
    MemberCreateBody,
    MemberList,
    MemberOut,
    MemberUpdate,
    MemberUpdateBody,
)
from api_service.services.changes import Accepted
from api_service.services.objects import (
    COMMON_DEFAULTS,
    apply_update,
    creation_fields,
    given_or_default,
    owner_project,
    reset_nulls,
)
from api_service.services.resource import Parent, Related, Resource, ResourceService
from api_service.services.tree import Tree, mark
from shared.status import ProvisioningStatus

MemberKey = tuple[str, int]
_IDENTITY = frozenset({"address", "protocol_port", "project_id", "subnet_id"})
"""What names a member in a replaced list, and cannot change."""
DEFAULTS: dict[str, object] = {
    "weight": 1,
    "backup": False,
    "monitor_address": None,
    "monitor_port": None,
}
"""A member's own fields when a create leaves them out or an update sends null."""


def key(address: object, port: int) -> MemberKey:
    return str(ip_address(str(address))), port


def new_member(
    ctx: RequestContext,
    tree: Tree,
    pool: Pool,
    body: MemberCreate,
    generation: int,
    taken: set[MemberKey] | None = None,
) -> Member:
    """A member of ``pool``, refused when the pool has a live one at its address and port.

    ``taken``: those of the pool's live members, kept by a caller that adds many (the new
    member's is added to it), so that a thousand members are not a million comparisons.
    """
    project = owner_project(ctx, body.project_id, tree.lb.project_id)
    if taken is None:
        taken = {
            key(m.address, m.protocol_port) for m in tree.members_of(pool.id) if not m.deleting
        }
    member_key = key(body.address, body.protocol_port)
    if member_key in taken:
        raise Conflict(
            f"Pool {pool.id} already has a member {body.address} port {body.protocol_port}."
        )
    taken.add(member_key)
    member = Member(
        id=uuid4(),
        loadbalancer_id=tree.lb.id,
        pool_id=pool.id,
        address=body.address,
        protocol_port=body.protocol_port,
        **given_or_default(body, DEFAULTS),
        subnet_id=body.subnet_id,
        **creation_fields(project, body, generation),
    )
    tree.members.append(member)
    return member


async def _locate(
    session: AsyncSession, ctx: RequestContext, body: MemberCreate, pool_id: UUID | None
) -> UUID:
    return await loadbalancer_via(session, ctx, Pool, "Pool", pool_id, "pool_id")


def _new(
    ctx: RequestContext, tree: Tree, body: MemberCreate, generation: int, pool_id: UUID | None
) -> Member:
    assert pool_id is not None, "members live under /pools/{pool_id}"
    return new_member(ctx, tree, live_pool(tree, pool_id), body, generation)


def _update(tree: Tree, member: Member, body: MemberUpdate) -> None:
    apply_update(member, body)


async def replace_members(
    service: ResourceService[Member],
    ctx: RequestContext,
    pool_id: UUID,
    bodies: list[MemberCreate],
    *,
    additive_only: bool = False,
) -> Accepted:
    """One operation: listed members are updated or created, members not listed go (or, with
    ``additive_only``, stay as they are); a field sent as null goes back to its default."""
    wanted: dict[MemberKey, MemberCreate] = {}
    for body in [reset_nulls(body, _BATCH_DEFAULTS, "members") for body in bodies]:
        if wanted.setdefault(key(body.address, body.protocol_port), body) is not body:
            raise Conflict(f"Member {body.address} port {body.protocol_port} is listed twice.")

    async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
        pool = live_pool(tree, pool_id)
        pool.provisioning_status = ProvisioningStatus.PENDING_UPDATE.value
        current = {
            key(m.address, m.protocol_port): m for m in tree.members_of(pool.id) if not m.deleting
        }
        for member_key, member in current.items():
            if member_key in wanted:
                if _differs(member, wanted[member_key]):
                    apply_update(member, wanted[member_key], skip=_IDENTITY)
                    mark(member, ProvisioningStatus.PENDING_UPDATE, generation)
            elif not additive_only:
                mark(member, ProvisioningStatus.PENDING_DELETE, generation)
        taken = set(current)
        for member_key, body in wanted.items():
            if member_key not in current:
                new_member(ctx, tree, pool, body, generation, taken)
        return pool

    async with service.reads() as session:
        loadbalancer_id = await loadbalancer_via(session, ctx, Pool, "Pool", pool_id, "pool_id")
    return await service.changes.change(
        ctx, loadbalancer_id, edit, action="batch_update", target_type="member"
    )


_BATCH_DEFAULTS = {
    **COMMON_DEFAULTS,
    **DEFAULTS,
    **{name: None for name in _IDENTITY if name in MemberCreate.model_fields},
}
"""A member of a replaced list: its identity fields may be null (they are not changed)."""


def _differs(member: Member, body: MemberCreate) -> bool:
    for name, value in body.model_dump(exclude_unset=True, mode="json").items():
        if name in _IDENTITY:
            continue
        current = getattr(member, name)
        if (str(current) if name == "monitor_address" and current else current) != value:
            return True
    return False


def member_out(member: Member, _: Related, ctx: RequestContext) -> MemberOut:
    return MemberOut(
        **common_fields(member),
        pool_id=member.pool_id,
        address=str(member.address),
        protocol_port=member.protocol_port,
        weight=member.weight,
        backup=member.backup,
        monitor_address=str(member.monitor_address) if member.monitor_address else None,
        monitor_port=member.monitor_port,
        subnet_id=member.subnet_id,
    )


_THIS = {
    "path.pool_id": "$response.body#/member/pool_id",
    "path.member_id": "$response.body#/member/id",
}

MEMBER: Resource[Any] = Resource(
    key="member",
    plural="members",
    title="Member",
    operation="Member",
    operations="Members",
    path_id="member_id",
    summary="a member of a pool",
    plural_summary="a pool's members",
    model=Member,
    in_tree=lambda tree: tree.members,
    locate=_locate,
    new=_new,
    update=_update,
    defaults=DEFAULTS,
    out=member_out,
    create_body=MemberCreateBody,
    update_body=MemberUpdateBody,
    body=MemberBody,
    listing=MemberList,
    parent=Parent(Pool, "Pool", "pools", "pool_id", Member.pool_id),
    filters={
        "address": parse_address,
        "protocol_port": parse_int,
        "weight": parse_int,
        "backup": parse_bool,
        "subnet_id": str,
        "monitor_address": parse_address,
        "monitor_port": parse_int,
    },
    sorts=frozenset({"address", "protocol_port", "weight", "backup"}),
    links={
        "UpdateMember": link("updateMember", "Change it.", _THIS),
        "DeleteMember": link("deleteMember", "Remove it.", _THIS),
    },
)
