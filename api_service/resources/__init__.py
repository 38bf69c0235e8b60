"""One declaration per resource of a load balancer's tree, with the rules that are its own.

Each module declares a :class:`~api_service.services.resource.Resource`: its
model and bodies, how its parent is found, what create, update and delete do
to the tree, how it is shown, its filters, sort keys and related ids. The
routes (``routers.resources``) and the service (``services.resource``) are
generic. A new resource is its table (model and migration), its schema
module, one of these (listed in ``catalog``), and its place in the tree
(``services.tree``: ``Tree``, ``load_tree``, ``mark_parents``, ``build_spec``;
``services.quotas.KINDS``).
"""
