"""Trees of ORM objects built in memory, every column set, for tests of the status rules
(and stored, for those on real PostgreSQL).

Objects are named after their role (``member_a1`` is the first member of ``pool_a``).
"""

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from uuid import uuid4

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from api_service.db.models import (
    Device,
    HealthMonitor,
    L7Policy,
    L7Rule,
    Listener,
    LoadBalancer,
    Member,
    Pool,
)
from api_service.services.tree import Tree
from shared.status import OperatingStatus, ProvisioningStatus

PROJECT = "project-1"


def common_columns(name: str) -> dict[str, object]:
    """The columns every tree object has, in a settled state at generation 1."""
    return {
        "id": uuid4(),
        "project_id": PROJECT,
        "name": name,
        "description": f"{name} description",
        "admin_state_up": True,
        "provisioning_status": ProvisioningStatus.ACTIVE.value,
        "operating_status": OperatingStatus.ONLINE.value,
        "status_reason": None,
        "tags": [],
        "changed_generation": 1,
        "deleting": False,
    }


def make_lb(vip: IPv4Address | IPv6Address = IPv4Address("192.0.2.10")) -> LoadBalancer:
    return LoadBalancer(
        **common_columns("lb"),
        provider="noop",
        device_id=uuid4(),
        vip_address=vip,
        vip_subnet_id=None,
        vip_network_id=None,
        generation=1,
    )


def make_listener(lb: LoadBalancer, name: str, port: int, pool: Pool | None) -> Listener:
    return Listener(
        **common_columns(name),
        loadbalancer_id=lb.id,
        protocol="HTTP",
        protocol_port=port,
        connection_limit=-1,
        default_pool_id=pool.id if pool is not None else None,
        timeout_client_data=50000,
        timeout_member_connect=5000,
        timeout_member_data=50000,
        timeout_tcp_inspect=0,
        insert_headers={"X-Forwarded-For": "true"},
        allowed_cidrs=["198.51.100.0/24"],
    )


def make_pool(lb: LoadBalancer, name: str) -> Pool:
    return Pool(
        **common_columns(name),
        loadbalancer_id=lb.id,
        protocol="HTTP",
        lb_algorithm="ROUND_ROBIN",
        session_persistence=None,
    )


def make_member(pool: Pool, name: str, address: str, port: int = 80) -> Member:
    return Member(
        **common_columns(name),
        loadbalancer_id=pool.loadbalancer_id,
        pool_id=pool.id,
        address=ip_address(address),
        protocol_port=port,
        weight=1,
        backup=False,
        monitor_address=None,
        monitor_port=None,
        subnet_id=None,
    )


def make_healthmonitor(pool: Pool, name: str) -> HealthMonitor:
    return HealthMonitor(
        **common_columns(name),
        loadbalancer_id=pool.loadbalancer_id,
        pool_id=pool.id,
        type="HTTP",
        delay=5,
        timeout=3,
        max_retries=3,
        max_retries_down=3,
        http_method="GET",
        url_path="/healthz",
        expected_codes="200",
    )


def make_l7policy(
    listener: Listener, name: str, position: int, redirect_pool: Pool | None = None
) -> L7Policy:
    """A REJECT policy, or a REDIRECT_TO_POOL one when ``redirect_pool`` is given."""
    return L7Policy(
        **common_columns(name),
        loadbalancer_id=listener.loadbalancer_id,
        listener_id=listener.id,
        action="REJECT" if redirect_pool is None else "REDIRECT_TO_POOL",
        position=position,
        redirect_pool_id=None if redirect_pool is None else redirect_pool.id,
        redirect_url=None,
        redirect_prefix=None,
        redirect_http_code=None,
    )


def make_l7rule(policy: L7Policy, name: str, path: str) -> L7Rule:
    """A rule matching paths that start with ``path``."""
    return L7Rule(
        **common_columns(name),
        loadbalancer_id=policy.loadbalancer_id,
        l7policy_id=policy.id,
        type="PATH",
        compare_type="STARTS_WITH",
        key=None,
        value=path,
        invert=False,
    )


@dataclass
class Sample:
    """lb ─ listener_a → pool_a (member_a1, member_a2, hm_a); listener_b → pool_b (member_b1)."""

    tree: Tree
    lb: LoadBalancer
    listener_a: Listener
    listener_b: Listener
    pool_a: Pool
    pool_b: Pool
    member_a1: Member
    member_a2: Member
    member_b1: Member
    hm_a: HealthMonitor


def sample_tree(vip: IPv4Address | IPv6Address = IPv4Address("192.0.2.10")) -> Sample:
    lb = make_lb(vip)
    pool_a, pool_b = make_pool(lb, "pool_a"), make_pool(lb, "pool_b")
    listener_a = make_listener(lb, "listener_a", 80, pool_a)
    listener_b = make_listener(lb, "listener_b", 81, pool_b)
    member_a1 = make_member(pool_a, "member_a1", "10.0.0.1")
    member_a2 = make_member(pool_a, "member_a2", "10.0.0.2")
    member_b1 = make_member(pool_b, "member_b1", "10.0.1.1")
    hm_a = make_healthmonitor(pool_a, "hm_a")
    tree = Tree(
        lb=lb,
        listeners=[listener_a, listener_b],
        pools=[pool_a, pool_b],
        members=[member_a1, member_a2, member_b1],
        healthmonitors=[hm_a],
    )
    return Sample(
        tree, lb, listener_a, listener_b, pool_a, pool_b, member_a1, member_a2, member_b1, hm_a
    )


def provisioning(tree: Tree) -> dict[str, str]:
    """Each object's provisioning status, by name."""
    return {obj.name: obj.provisioning_status for obj in tree.objects()}


def operating(tree: Tree) -> dict[str, str]:
    """Each object's operating status, by name."""
    return {obj.name: obj.operating_status for obj in tree.objects()}


async def stored(engine: AsyncEngine, sample: Sample) -> None:
    """The sample's device and tree as they are in memory, committed."""
    async with async_sessionmaker(engine, expire_on_commit=False).begin() as session:
        session.add(
            Device(
                id=sample.lb.device_id,
                name=f"device-{sample.lb.id}",
                driver="noop",
                management_url="http://127.0.0.1:1",
                vip_cidr="192.0.2.0/24",
                capacity=1000,
            )
        )
        await session.flush()
        session.add_all(list(sample.tree.objects()))
