"""The life of every resource of a load balancer's tree, written once.

What is particular to a resource (its model and bodies, how its parent is
found, its rules on create, update and delete, its filters, sort keys and
related ids) is its :class:`Resource` declaration, in ``api_service.resources``.
This module applies to all of them the rules that are the same for each:
another project's object is not found (404, one wording), a change locks the
load balancer's tree and goes through :class:`~api_service.services.changes.Changes`,
an object being deleted takes no other change, an ``If-Match`` must name the
object's current ETag, a field an update sends as null goes back to its default
(``Resource.defaults``), and deleting marks the object ``PENDING_DELETE``.
"""

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Generic, TypeVar
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import (
    ARRAY,
    Executable,
    Select,
    Uuid,
    and_,
    any_,
    bindparam,
    func,
    literal,
    select,
    union_all,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.listing import Filters as Filters
from api_service.db.listing import (
    ListQuery,
    Page,
    alias_of,
    fetch_page,
    parse_bool,
    to_the_second,
)
from api_service.db.models import TreeObject
from api_service.errors import NotFound
from api_service.services.changes import Accepted, Changes, require_etag, require_mutable
from api_service.services.objects import COMMON_DEFAULTS, reset_nulls
from api_service.services.tree import Tree, mark
from shared.status import ProvisioningStatus

M = TypeVar("M", bound=TreeObject)

COMMON_FILTERS: Filters = {
    "id": UUID,
    "project_id": str,
    "name": str,
    "description": str,
    "admin_state_up": parse_bool,
    "provisioning_status": str,
    "operating_status": str,
    "created_at": to_the_second("created_at"),
    "updated_at": to_the_second("updated_at"),
}
LOADBALANCER_ID_FILTERS: Filters = {
    "loadbalancer_id": UUID,
    "load_balancer_id": alias_of("loadbalancer_id", UUID, "openstacksdk"),
}
"""The filters of a load balancer's children by their load balancer."""
COMMON_SORTS = frozenset(
    {
        "id",
        "project_id",
        "name",
        "description",
        "admin_state_up",
        "provisioning_status",
        "operating_status",
        "created_at",
        "updated_at",
    }
)


@dataclass(frozen=True)
class Related:
    """Ids of what an object refers to, keyed by relation name (``listeners``, ``members``...)."""

    ids: Mapping[str, Sequence[UUID]] = field(default_factory=dict)

    def of(self, name: str) -> list[UUID]:
        return list(self.ids.get(name, ()))


@dataclass(frozen=True)
class Shown(Generic[M]):
    """An object as a GET shows it: with the ids it refers to."""

    obj: M
    related: Related

    @property
    def provisioning_status(self) -> str:
        return self.obj.provisioning_status


@dataclass(frozen=True)
class Relation:
    """Rows related to an object: the column of theirs that names it, their id, their order."""

    parent: InstrumentedAttribute[Any]
    child: InstrumentedAttribute[Any]
    order: InstrumentedAttribute[Any] | None = None
    """By id when None."""


Locate = Callable[[AsyncSession, RequestContext, Any, UUID | None], Awaitable[UUID]]
"""The load balancer a new object goes under: from its body, or from the parent in the path
(404 when the caller cannot see the parent)."""
New = Callable[[RequestContext, Tree, Any, int, UUID | None], M]
"""Adds a new object to the locked tree at a generation: (caller, tree, body, generation,
parent id from the path)."""
Update = Callable[[Tree, M, Any], None]
"""Applies an update body to an object of the locked tree (the generic part marks it)."""
Delete = Callable[[Tree, M, int], None]
"""Marks what deleting the object deletes at a generation (the object, and what goes with it)."""


def delete_alone(tree: Tree, obj: TreeObject, generation: int) -> None:
    mark(obj, ProvisioningStatus.PENDING_DELETE, generation)


@dataclass(frozen=True)
class Resource(Generic[M]):
    """One resource of the tree: everything that is particular to it."""

    key: str
    """Singular: the body key (``listener``) and the operation's target type."""
    plural: str
    """The collection: its path segment and list key (``listeners``)."""
    title: str
    """As a sentence names it: ``Listener 8c… not found.``"""
    model: type[M]
    in_tree: Callable[[Tree], list[M]]
    update: Update[M]
    out: Callable[[M, Related, RequestContext], BaseModel]
    """The object as the API shows it."""
    create_body: type[BaseModel]
    update_body: type[BaseModel]
    body: type[BaseModel]
    listing: type[BaseModel]
    operation: str
    """How operation ids name one: ``createHealthMonitor``."""
    operations: str
    """And the list: ``listHealthMonitors``, ``listL7Policies``."""
    path_id: str
    """The path parameter of one object: ``healthmonitor_id``."""
    summary: str
    """A sentence's noun: ``a health monitor``."""
    plural_summary: str
    """Its plural, for the list: ``health monitors``."""
    locate: Locate | None = None
    new: New[M] | None = None
    """With ``locate``, how the generic create adds one (a load balancer has its own)."""
    delete: Delete[M] | None = delete_alone
    """None: not deleted by the generic route (a load balancer has its own)."""
    parent: "Parent | None" = None
    """For a collection nested under its parent's path (``/pools/{pool_id}/members``)."""
    filters: Filters = field(default_factory=dict)
    admin_filters: frozenset[str] = frozenset()
    """Filters only an admin may use (they name infrastructure: ``device_id``)."""
    sorts: frozenset[str] = frozenset()
    related: Mapping[str, Relation] = field(default_factory=dict)
    links: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    """OpenAPI links from one object to what may be done with it next."""
    defaults: Mapping[str, object] = field(default_factory=dict)
    """What a field of the update body that an update sends as null goes back to (and a
    create that leaves it out gets), besides ``COMMON_DEFAULTS``; a field of the update body
    named in neither cannot be null (400)."""

    @property
    def all_defaults(self) -> Mapping[str, object]:
        return {**COMMON_DEFAULTS, **self.defaults}

    @cached_property
    def related_query(self) -> Executable | None:
        """The ids of every relation of a set of objects (``:ids``): one statement, built once."""
        return related_query(self.related)

    @cached_property
    def shown_query(self) -> Select[Any]:
        """The object bound as ``id`` and, a column each, the ids of every relation of it in
        :func:`related`'s order (NULL: none); built once."""
        return select(
            self.model,
            *(
                select(func.array_agg(aggregate_order_by(relation.child, *_order(relation))))
                .where(relation.parent == self.model.id)
                .scalar_subquery()
                for relation in self.related.values()
            ),
        ).where(self.model.id == bindparam("id"))


@dataclass(frozen=True)
class Parent:
    """The object a nested collection lives under."""

    model: type[TreeObject]
    title: str
    path: str
    """Its collection path: ``pools``."""
    path_id: str
    """Its path parameter: ``pool_id``."""
    column: InstrumentedAttribute[Any]
    """The child's column naming it: ``Member.pool_id``."""


@dataclass(frozen=True)
class ResourceService(Generic[M]):
    resource: Resource[M]
    reads: SessionFactory
    """Read-only sessions (``db.engine.read_session_factory``): every change goes through
    ``changes``."""
    changes: Changes

    async def shown(
        self, ctx: RequestContext, obj_id: UUID, parent_id: UUID | None = None
    ) -> "Shown[M]":
        """The object and what it refers to, in one statement (:attr:`Resource.shown_query`)."""
        r = self.resource
        async with self.reads() as session:
            row = (await session.execute(r.shown_query, {"id": obj_id})).first()
        obj, *ids = row or (None,)
        return Shown(
            self._seen(ctx, obj, obj_id, parent_id),
            Related(dict(zip(r.related, (found or [] for found in ids), strict=True))),
        )

    async def related(self, obj: M, among: Sequence[object] | None = None) -> Related:
        """What ``obj`` refers to; found in ``among`` when it holds all of it (see
        :attr:`~api_service.services.changes.Accepted.created`), else read."""
        if among is not None:
            return related_among(self.resource.related, obj, among)
        async with self.reads() as session:
            (found,) = await related(session, self.resource, [obj])
        return found

    async def page(
        self, ctx: RequestContext, query: ListQuery, parent_id: UUID | None = None
    ) -> tuple[Page[M], list[Related]]:
        """One page the caller may see (of one parent's objects, for a nested collection)."""
        r = self.resource
        conditions = []
        if not ctx.reads_all:
            conditions.append(r.model.project_id == ctx.project_id)
        async with self.reads() as session:
            if r.parent is not None:
                await _visible_parent(session, ctx, r.parent, parent_id)
                conditions.append(r.parent.column == parent_id)
            page = await fetch_page(
                session,
                r.model,
                query,
                scope=_all(conditions),
                filterable={
                    name: parse
                    for name, parse in {**COMMON_FILTERS, **r.filters}.items()
                    if ctx.is_admin or name not in r.admin_filters
                },
                sortable=COMMON_SORTS | r.sorts,
            )
            return page, await related(session, r, page.items)

    async def create(
        self, ctx: RequestContext, body: Any, parent_id: UUID | None = None
    ) -> Accepted:
        r = self.resource
        locate, new = r.locate, r.new
        assert locate is not None and new is not None, f"{r.title} has its own create"
        async with self.reads() as session:
            loadbalancer_id = await locate(session, ctx, body, parent_id)

        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            return new(ctx, tree, body, generation, parent_id)

        return await self.changes.change(
            ctx, loadbalancer_id, edit, action="create", target_type=r.key
        )

    async def update(
        self,
        ctx: RequestContext,
        obj_id: UUID,
        body: Any,
        if_match: str | None,
        parent_id: UUID | None = None,
    ) -> Accepted:
        r = self.resource
        body = reset_nulls(body, r.all_defaults, r.key)

        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            obj = self._in_tree(tree, obj_id, parent_id)
            require_mutable(obj, r.title)
            require_etag(obj, if_match)
            r.update(tree, obj, body)
            mark(obj, ProvisioningStatus.PENDING_UPDATE, generation)
            return obj

        return await self._change(ctx, obj_id, parent_id, edit, "update")

    async def delete(
        self, ctx: RequestContext, obj_id: UUID, if_match: str | None, parent_id: UUID | None = None
    ) -> Accepted:
        delete = self.resource.delete
        assert delete is not None, f"{self.resource.title} has its own delete"

        async def edit(session: AsyncSession, tree: Tree, generation: int) -> TreeObject:
            obj = self._in_tree(tree, obj_id, parent_id)
            require_etag(obj, if_match)
            delete(tree, obj, generation)
            return obj

        return await self._change(ctx, obj_id, parent_id, edit, "delete")

    async def _change(
        self,
        ctx: RequestContext,
        obj_id: UUID,
        parent_id: UUID | None,
        edit: Callable[[AsyncSession, Tree, int], Awaitable[TreeObject]],
        action: str,
    ) -> Accepted:
        return await self.changes.change(
            ctx,
            await self._loadbalancer_of(ctx, obj_id, parent_id),
            edit,
            action=action,
            target_type=self.resource.key,
        )

    async def _loadbalancer_of(
        self, ctx: RequestContext, obj_id: UUID, parent_id: UUID | None
    ) -> UUID:
        """The load balancer whose tree holds the object (404 unless the caller sees it); a
        load balancer is its own, which the change's lock finds or refuses without a read."""
        if not hasattr(self.resource.model, "loadbalancer_id"):
            return obj_id
        async with self.reads() as session:
            obj = await self._visible(session, ctx, obj_id, parent_id)
        loadbalancer_id: UUID = getattr(obj, "loadbalancer_id")  # noqa: B009 (M: any child)
        return loadbalancer_id

    async def _visible(
        self, session: AsyncSession, ctx: RequestContext, obj_id: UUID, parent_id: UUID | None
    ) -> M:
        """The object if the caller may see it (and it is under ``parent_id``), else 404."""
        return self._seen(ctx, await session.get(self.resource.model, obj_id), obj_id, parent_id)

    def _seen(self, ctx: RequestContext, obj: M | None, obj_id: UUID, parent_id: UUID | None) -> M:
        if obj is None or not ctx.owns(obj.project_id) or not self._under(obj, parent_id):
            raise NotFound(self.resource.title, obj_id)
        return obj

    def _in_tree(self, tree: Tree, obj_id: UUID, parent_id: UUID | None) -> M:
        r = self.resource
        obj = next((o for o in r.in_tree(tree) if o.id == obj_id), None)
        if obj is None or not self._under(obj, parent_id):
            raise NotFound(r.title, obj_id)
        return obj

    def _under(self, obj: M, parent_id: UUID | None) -> bool:
        parent = self.resource.parent
        return parent is None or getattr(obj, parent.column.key) == parent_id


async def _visible_parent(
    session: AsyncSession, ctx: RequestContext, parent: Parent, parent_id: UUID | None
) -> TreeObject:
    obj = await session.get(parent.model, parent_id)
    if obj is None or not ctx.owns(obj.project_id):
        raise NotFound(parent.title, parent_id)
    return obj


def _all(conditions: list[Any]) -> Any:
    return and_(*conditions) if conditions else None


def related_query(relations: Mapping[str, Relation]) -> Executable | None:
    """Rows (relation index, parent, child, rank) of every relation of the parents ``:ids``
    (an array)."""
    if not relations:
        return None
    ids = bindparam("ids", type_=ARRAY(Uuid()))
    return union_all(
        *(
            select(
                literal(index).label("relation"),
                relation.parent.label("parent"),
                relation.child.label("child"),
                func.row_number()
                .over(partition_by=relation.parent, order_by=_order(relation))
                .label("rank"),
            ).where(relation.parent == any_(ids))
            for index, relation in enumerate(relations.values())
        )
    )


def _order(relation: Relation) -> tuple[InstrumentedAttribute[Any], ...]:
    """How a relation's ids are listed: by its order, then by id."""
    return (relation.child if relation.order is None else relation.order, relation.child)


async def related(
    session: AsyncSession, resource: "Resource[Any]", objects: Sequence[TreeObject]
) -> list[Related]:
    """The related ids each object's body lists: one query for every relation of a whole page
    (the objects' ids bound once, as an array)."""
    query = resource.related_query
    if not objects or query is None:
        return [Related() for _ in objects]
    grouped: dict[tuple[int, UUID], list[tuple[int, UUID]]] = defaultdict(list)
    rows = await session.execute(query, {"ids": [obj.id for obj in objects]})
    for index, parent_id, child_id, rank in rows:
        grouped[index, parent_id].append((rank, child_id))
    names = list(resource.related)
    return [
        Related(
            {
                name: [child for _, child in sorted(grouped.get((index, obj.id), ()))]
                for index, name in enumerate(names)
            }
        )
        for obj in objects
    ]


def related_among(
    relations: Mapping[str, Relation], obj: TreeObject, objects: Sequence[object]
) -> Related:
    """What :func:`related` reads of ``obj``, in the same order, from ``objects`` instead."""
    found = {}
    for name, relation in relations.items():
        model = relation.child.parent.class_
        order = (relation.child if relation.order is None else relation.order).key
        children = [
            child
            for child in objects
            if isinstance(child, model) and getattr(child, relation.parent.key) == obj.id
        ]
        children.sort(key=lambda child: (getattr(child, order), child.id))
        found[name] = [child.id for child in children]
    return Related(found)
