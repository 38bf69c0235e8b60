"""Member rules: unique address and port in a pool; the batch update replaces the whole list."""

from dataclasses import dataclass
from ipaddress import ip_address
from uuid import UUID, uuid4

from sqlalchemy.ext.asyncio import AsyncSession

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.models import Member, Pool, TreeObject
from api_service.errors import Conflict, NotFound
from api_service.schemas.members import MemberCreate, MemberUpdate
from api_service.services.changes import Accepted, Changes, Edit, require_etag, require_mutable
from api_service.services.objects import apply_update, creation_fields, find, owner_project, visible
from api_service.services.tree import Tree, mark
from shared.status import ProvisioningStatus

MemberKey = tuple[str, int]


def key(address: object, port: int) -> MemberKey:
    return str(ip_address(str(address))), port


def new_member(
    ctx: RequestContext, tree: Tree, pool: Pool, body: MemberCreate, generation: int
) -> Member:
    project = owner_project(ctx, body.project_id, tree.lb.project_id)
    taken = {key(m.address, m.protocol_port) for m in tree.members_of(pool.id) if not m.deleting}
    if key(body.address, body.protocol_port) in taken:
        raise Conflict(
            f"Pool {pool.id} already has a member {body.address} port {body.protocol_port}."
        )
    given = body.model_dump(exclude_none=True, mode="json")
    member = Member(
        id=uuid4(),
        loadbalancer_id=tree.lb.id,
        pool_id=pool.id,
        address=body.address,
        protocol_port=body.protocol_port,
        weight=given.get("weight", 1),
        backup=given.get("backup", False),
        monitor_address=body.monitor_address,
        monitor_port=body.monitor_port,
        subnet_id=body.subnet_id,
        **creation_fields(project, body, generation),
    )
    tree.members.append(member)
    return member


def live_pool(tree: Tree, pool_id: UUID) -> Pool:
    pool = find(tree.pools, pool_id, "Pool")
    require_mutable(pool, "Pool")
    return pool


@dataclass(frozen=True)
class MemberService:
    sessions: SessionFactory
    changes: Changes

    async def get(self, ctx: RequestContext, pool_id: UUID, member_id: UUID) -> Member:
        async with self.sessions() as session:
            member = await visible(session, ctx, Member, member_id, "Member")
        if member.pool_id != pool_id:
            raise NotFound("Member", member_id)
        return member

    async def pool(self, ctx: RequestContext, pool_id: UUID) -> Pool:
        async with self.sessions() as session:
            return await visible(session, ctx, Pool, pool_id, "Pool")

    async def create(self, ctx: RequestContext, pool_id: UUID, body: MemberCreate) -> Accepted:
        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            member = new_member(ctx, tree, live_pool(tree, pool_id), body, generation)
            session.add(member)
            return member

        return await self.changes.change_child(
            ctx, Pool, pool_id, edit, action="create", target_type="member"
        )

    async def update(
        self,
        ctx: RequestContext,
        pool_id: UUID,
        member_id: UUID,
        body: MemberUpdate,
        if_match: str | None,
    ) -> Accepted:
        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            member = _member_of(tree, pool_id, member_id)
            require_mutable(member, "Member")
            require_etag(member, if_match)
            apply_update(member, body)
            mark(member, ProvisioningStatus.PENDING_UPDATE, generation)
            return member

        return await self._change(ctx, pool_id, edit, "update")

    async def delete(
        self, ctx: RequestContext, pool_id: UUID, member_id: UUID, if_match: str | None
    ) -> Accepted:
        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            member = _member_of(tree, pool_id, member_id)
            require_etag(member, if_match)
            mark(member, ProvisioningStatus.PENDING_DELETE, generation)
            return member

        return await self._change(ctx, pool_id, edit, "delete")

    async def replace_all(
        self, ctx: RequestContext, pool_id: UUID, members: list[MemberCreate]
    ) -> Accepted:
        """One operation: members not listed go, listed ones are updated or created."""
        wanted: dict[MemberKey, MemberCreate] = {}
        for body in members:
            if wanted.setdefault(key(body.address, body.protocol_port), body) is not body:
                raise Conflict(f"Member {body.address} port {body.protocol_port} is listed twice.")

        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            pool = live_pool(tree, pool_id)
            current = {
                key(m.address, m.protocol_port): m
                for m in tree.members_of(pool.id)
                if not m.deleting
            }
            for member_key, member in current.items():
                if member_key not in wanted:
                    mark(member, ProvisioningStatus.PENDING_DELETE, generation)
                elif _differs(member, wanted[member_key]):
                    apply_update(member, wanted[member_key], skip=_IDENTITY)
                    mark(member, ProvisioningStatus.PENDING_UPDATE, generation)
            for member_key, body in wanted.items():
                if member_key not in current:
                    session.add(new_member(ctx, tree, pool, body, generation))
            return pool

        return await self._change(ctx, pool_id, edit, "batch_update")

    async def _change(
        self, ctx: RequestContext, pool_id: UUID, edit: Edit, action: str
    ) -> Accepted:
        return await self.changes.change_child(
            ctx, Pool, pool_id, edit, action=action, target_type="member"
        )


_IDENTITY = frozenset({"address", "protocol_port", "project_id", "subnet_id"})


def _differs(member: Member, body: MemberCreate) -> bool:
    for name, value in body.model_dump(exclude_unset=True, mode="json").items():
        if name in _IDENTITY or value is None:
            continue
        current = getattr(member, name)
        if (str(current) if name == "monitor_address" and current else current) != value:
            return True
    return False


def _member_of(tree: Tree, pool_id: UUID, member_id: UUID) -> Member:
    member = find(tree.members, member_id, "Member")
    if member.pool_id != pool_id:
        raise NotFound("Member", member_id)
    return member
