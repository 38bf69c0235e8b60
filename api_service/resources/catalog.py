"""Every resource of the tree, in the order the OpenAPI document lists them."""

from typing import Any

from api_service.resources.healthmonitors import HEALTHMONITOR
from api_service.resources.l7policies import L7POLICY
from api_service.resources.l7rules import L7RULE
from api_service.resources.listeners import LISTENER
from api_service.resources.loadbalancers import LOADBALANCER
from api_service.resources.members import MEMBER
from api_service.resources.pools import POOL
from api_service.services.resource import Resource

RESOURCES: tuple[Resource[Any], ...] = (
    LOADBALANCER,
    LISTENER,
    POOL,
    MEMBER,
    HEALTHMONITOR,
    L7POLICY,
    L7RULE,
)
