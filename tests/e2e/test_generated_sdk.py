"""A client generated from the running API's OpenAPI document drives the service.

openapi-python-client, with its default settings, generates a package from ``/openapi.json``
without a warning; the package is installed into a throwaway virtual environment, where a
script that imports nothing of this project (only the generated client, and the standard
library) registers a noop device, builds a load balancer's tree step by step and in one
call, long-polls for ACTIVE, reads a 409 as a typed Problem, pages a list along its typed
links, replaces a pool's members in one call and deletes with cascade.
"""

import asyncio
import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from tests.support.client import ADMIN_TOKEN, LbaasClient, random_cidr
from tests.support.stack import BIN, Agent, Api

GENERATOR = BIN / "openapi-python-client"
PACKAGE = "lbaas_client"
"""The package the generator names after the document's title (``lbaas``)."""
TIMEOUT = 120
"""Seconds any step (generation, install, the script) may take before the test fails."""

SCRIPT = r'''
"""Drives the API with the generated client only."""

import sys
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx

from lbaas_client import AuthenticatedClient
from lbaas_client.api.devices import create_device, delete_device
from lbaas_client.api.healthmonitors import create_health_monitor
from lbaas_client.api.listeners import create_listener, get_listener
from lbaas_client.api.loadbalancers import (
    create_load_balancer,
    delete_load_balancer,
    get_load_balancer,
    get_load_balancer_status_tree,
)
from lbaas_client.api.members import create_member, list_members, replace_members
from lbaas_client.api.pools import create_pool, get_pool
from lbaas_client.models import (
    DeviceBody,
    DeviceCreate,
    DeviceCreateBody,
    HealthMonitorBody,
    HealthMonitorCreate,
    HealthMonitorCreateBody,
    HealthMonitorInTree,
    InsertHeaders,
    LbAlgorithm,
    ListenerBody,
    ListenerCreate,
    ListenerCreateBody,
    ListenerInTree,
    ListenerProtocol,
    LoadBalancerBody,
    LoadBalancerCreate,
    LoadBalancerCreateBody,
    MemberBody,
    MemberCreate,
    MemberCreateBody,
    MemberList,
    MembersBatchBody,
    MonitorType,
    OperatingStatus,
    PageLinkRel,
    PoolBody,
    PoolCreate,
    PoolCreateBody,
    PoolInTree,
    PoolProtocol,
    Problem,
    ProvisioningStatus,
    StatusTreeBody,
)

URL, TOKEN, CIDR = sys.argv[1:4]
client = AuthenticatedClient(
    base_url=URL,
    token=TOKEN,
    auth_header_name="X-Auth-Token",
    prefix="",
    timeout=httpx.Timeout(60.0),
    raise_on_unexpected_status=True,
)
suffix = uuid.uuid4().hex[:8]


def step(text):
    print(f"[{time.monotonic() - START:6.2f}s] {text}", flush=True)


def parsed(response, kind, status):
    """The typed body of ``response``, which must have ``status``."""
    assert response.status_code == status, (response.status_code, response.content)
    assert isinstance(response.parsed, kind), (type(response.parsed), response.content)
    return response.parsed


def accepted(response, kind):
    """A 202: its typed body, and the headers the document promises."""
    body = parsed(response, kind, 202)
    for header in ("Location", "Retry-After", "X-Operation-Id", "ETag"):
        assert response.headers.get(header), (header, response.headers)
    return body


def active(lb_id):
    """Long poll until the load balancer's tree has settled: it must be ACTIVE."""
    response = get_load_balancer.sync_detailed(
        lb_id, client=client, wait_for=ProvisioningStatus.ACTIVE, timeout=30
    )
    lb = parsed(response, LoadBalancerBody, 200).loadbalancer
    assert lb.provisioning_status is ProvisioningStatus.ACTIVE, lb.provisioning_status
    assert isinstance(lb.operating_status, OperatingStatus)
    return lb


def gone(lb_id):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = get_load_balancer.sync_detailed(lb_id, client=client)
        if response.status_code == 404:
            assert isinstance(response.parsed, Problem) and response.parsed.status == 404
            return
        lb = parsed(response, LoadBalancerBody, 200).loadbalancer
        assert lb.provisioning_status is ProvisioningStatus.PENDING_DELETE
        time.sleep(0.2)
    raise AssertionError(f"load balancer {lb_id} still there")


START = time.monotonic()
step("register a noop device")
device = parsed(
    create_device.sync_detailed(
        client=client,
        body=DeviceCreateBody(
            device=DeviceCreate(
                name=f"sdk-{suffix}",
                driver="noop",
                management_url=f"noop://sdk-{suffix}",
                vip_cidr=CIDR,
                capacity=10,
            )
        ),
    ),
    DeviceBody,
    201,
).device

step("a load balancer, then its tree step by step")
lb = accepted(
    create_load_balancer.sync_detailed(
        client=client,
        body=LoadBalancerCreateBody(
            loadbalancer=LoadBalancerCreate(
                name="sdk-web", provider="noop", device_id=device.id, tags=["sdk"]
            )
        ),
    ),
    LoadBalancerBody,
).loadbalancer
assert lb.provisioning_status is ProvisioningStatus.PENDING_CREATE
assert lb.vip_address and isinstance(lb.vip_address, str)
active(lb.id)

listener = accepted(
    create_listener.sync_detailed(
        client=client,
        body=ListenerCreateBody(
            listener=ListenerCreate(
                loadbalancer_id=lb.id,
                protocol=ListenerProtocol.HTTP,
                protocol_port=80,
                insert_headers=InsertHeaders(x_forwarded_for="true"),
            )
        ),
    ),
    ListenerBody,
).listener
assert listener.protocol is ListenerProtocol.HTTP
assert listener.insert_headers.x_forwarded_for == "true"
active(lb.id)

pool = accepted(
    create_pool.sync_detailed(
        client=client,
        body=PoolCreateBody(
            pool=PoolCreate(
                listener_id=listener.id,
                protocol=PoolProtocol.HTTP,
                lb_algorithm=LbAlgorithm.LEAST_CONNECTIONS,
            )
        ),
    ),
    PoolBody,
).pool
assert pool.lb_algorithm is LbAlgorithm.LEAST_CONNECTIONS and pool.protocol is PoolProtocol.HTTP
active(lb.id)

members = []
for port in (8001, 8002, 8003):
    member = accepted(
        create_member.sync_detailed(
            pool.id,
            client=client,
            body=MemberCreateBody(member=MemberCreate(address="127.0.0.1", protocol_port=port)),
        ),
        MemberBody,
    ).member
    members.append(member.id)
    active(lb.id)

monitor = accepted(
    create_health_monitor.sync_detailed(
        client=client,
        body=HealthMonitorCreateBody(
            healthmonitor=HealthMonitorCreate(
                pool_id=pool.id,
                type_=MonitorType.HTTP,
                delay=2,
                timeout=1,
                max_retries=2,
                url_path="/",
            )
        ),
    ),
    HealthMonitorBody,
).healthmonitor
assert monitor.type_ is MonitorType.HTTP
active(lb.id)
pool = parsed(get_pool.sync_detailed(pool.id, client=client), PoolBody, 200).pool
assert pool.healthmonitor_id == monitor.id and len(pool.members) == 3
listener = parsed(
    get_listener.sync_detailed(listener.id, client=client), ListenerBody, 200
).listener
assert listener.default_pool_id == pool.id

step("a second listener on the same port: a 409, as a typed Problem")
problem = parsed(
    create_listener.sync_detailed(
        client=client,
        body=ListenerCreateBody(
            listener=ListenerCreate(
                loadbalancer_id=lb.id, protocol=ListenerProtocol.TCP, protocol_port=80
            )
        ),
    ),
    Problem,
    409,
)
assert problem.status == 409 and problem.title and "80" in problem.detail, problem

step("page through the members, one a page, along the typed links")
seen = []
page = parsed(list_members.sync_detailed(pool.id, client=client, limit=1), MemberList, 200)
while True:
    assert len(page.members) == 1, page.members
    seen.append(page.members[0].id)
    following = [link for link in page.members_links if link.rel is PageLinkRel.NEXT]
    if not following:
        break
    query = parse_qs(urlsplit(following[0].href).query)
    assert query["limit"] == ["1"], following[0].href
    answer = client.get_httpx_client().get(following[0].href)
    assert answer.status_code == 200, answer.text
    page = MemberList.from_dict(answer.json())
assert sorted(map(str, seen)) == sorted(map(str, members)), (seen, members)

step("replace the members in one call")
listed = accepted(
    replace_members.sync_detailed(
        pool.id,
        client=client,
        body=MembersBatchBody(
            members=[
                MemberCreate(address="127.0.0.1", protocol_port=8001, weight=5),
                MemberCreate(address="127.0.0.1", protocol_port=8004),
            ]
        ),
    ),
    MemberList,
)
kept = [m for m in listed.members if m.provisioning_status is not ProvisioningStatus.PENDING_DELETE]
assert sorted(m.protocol_port for m in kept) == [8001, 8004], listed.members
active(lb.id)
listed = parsed(list_members.sync_detailed(pool.id, client=client), MemberList, 200)
assert sorted((m.protocol_port, m.weight) for m in listed.members) == [(8001, 5), (8004, 1)]
tree = parsed(
    get_load_balancer_status_tree.sync_detailed(lb.id, client=client), StatusTreeBody, 200
)
(shown,) = tree.statuses.loadbalancer.listeners
(shown_pool,) = shown.pools
assert sorted(m.protocol_port for m in shown_pool.members) == [8001, 8004]
assert all(m.provisioning_status is ProvisioningStatus.ACTIVE for m in shown_pool.members)
assert shown_pool.health_monitor.type_ is MonitorType.HTTP

step("a load balancer with its whole tree in one call")
whole = accepted(
    create_load_balancer.sync_detailed(
        client=client,
        body=LoadBalancerCreateBody(
            loadbalancer=LoadBalancerCreate(
                name="sdk-tree",
                provider="noop",
                device_id=device.id,
                listeners=[
                    ListenerInTree(
                        protocol=ListenerProtocol.HTTP,
                        protocol_port=8080,
                        default_pool=PoolInTree(
                            protocol=PoolProtocol.HTTP,
                            lb_algorithm=LbAlgorithm.ROUND_ROBIN,
                            members=[
                                MemberCreate(address="127.0.0.1", protocol_port=9001),
                                MemberCreate(address="::1", protocol_port=9002),
                            ],
                            healthmonitor=HealthMonitorInTree(
                                type_=MonitorType.TCP, delay=2, timeout=1, max_retries=2
                            ),
                        ),
                    )
                ],
            )
        ),
    ),
    LoadBalancerBody,
).loadbalancer
assert len(whole.listeners) == 1 and len(whole.pools) == 1
active(whole.id)
tree = parsed(
    get_load_balancer_status_tree.sync_detailed(whole.id, client=client), StatusTreeBody, 200
)
(shown_pool,) = tree.statuses.loadbalancer.listeners[0].pools
assert sorted(m.address for m in shown_pool.members) == ["127.0.0.1", "::1"]

step("delete both with cascade")
for lb_id in (lb.id, whole.id):
    deleted = accepted(
        delete_load_balancer.sync_detailed(lb_id, client=client, cascade=True), LoadBalancerBody
    ).loadbalancer
    assert deleted.provisioning_status is ProvisioningStatus.PENDING_DELETE
for lb_id in (lb.id, whole.id):
    gone(lb_id)
deadline = time.monotonic() + 30
while (response := delete_device.sync_detailed(device.id, client=client)).status_code == 409:
    assert time.monotonic() < deadline, response.content
    time.sleep(0.2)
assert response.status_code == 204, (response.status_code, response.content)
step("done")
'''


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``argv``; its output, or the test fails with it."""
    started = time.monotonic()
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    took = time.monotonic() - started
    assert done.returncode == 0, f"{argv[:3]} exited {done.returncode}:\n{done.stdout}"
    print(f"$ {' '.join(argv[:3])} ... ({took:.1f} s)\n{done.stdout}")
    return done.stdout


def _generate_and_drive(url: str, document: str, cidr: str, work: Path) -> None:
    (work / "openapi.json").write_text(document)
    # The generator formats its output with ruff, which it looks for on the PATH.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    output = _run(
        [str(GENERATOR), "generate", "--path", "openapi.json", "--output-path", "client"],
        work,
        env,
    )
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines == ["Generating client"], f"the generator said more than that:\n{output}"

    # A virtual environment of its own: the generated package, httpx and attrs (from this
    # project's environment, which has them) and nothing else of this project.
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], work)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--quiet", "--no-deps", "./client"], work)
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "project-dependencies.pth").write_text(ours + "\n")

    script = work / "drive.py"
    script.write_text(SCRIPT)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    # -I: neither the working directory nor PYTHONPATH is on the path (no tests.*, no
    # api_service unless installed, which the script does not import anyway).
    _run([str(python), "-I", str(script), url, ADMIN_TOKEN, cidr], work, clean)


async def test_a_generated_client_drives_the_api(
    api: Api, agent: Agent, client: LbaasClient, tmp_path: Path
) -> None:
    answer = await client.http.get("/openapi.json")
    assert answer.status_code == 200
    document = json.dumps(answer.json())
    await asyncio.to_thread(_generate_and_drive, api.url, document, random_cidr(), tmp_path)
