"""Schemathesis against a running API and agent: the OpenAPI document is the contract.

Every documented operation gets positive and negative data (examples, coverage
and fuzzing phases) and chains of calls along the document's links and those
Schemathesis infers (stateful phase), with every check Schemathesis has, but for
the few operations whose exclusions ``_config`` explains. The run must show no
5xx and no response that the document does not describe.

The API runs on a database and broker vhost of its own: the run acts as the
admin (it registers, changes and deletes devices, sets quotas, issues and
revokes tokens, and sends several hundred requests a second with one token),
which must not disturb the session's API that the other tests share.
"""

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.client import ADMIN_TOKEN, LbaasClient, authenticated
from tests.support.stack import BIN, Agent, Api, isolated, running

SCHEMATHESIS = BIN / "schemathesis"
ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = 10
"""Test cases per operation and fuzzing pass (the coverage phase adds its own)."""
MAX_TIME = 75
"""Schemathesis' budget, in seconds, for the whole run: fuzzing and stateful passes
repeat until it is spent."""
HARD_TIMEOUT = 150
"""Seconds after which the run is killed and the test fails."""
SEED = 1
"""A fixed seed, so that a failure can be replayed; run it by hand with others to explore."""


@dataclass(frozen=True)
class Target:
    api: Api
    spare_device_id: str
    spare_token_id: str


@pytest.fixture
async def target(log_dir: Path) -> AsyncIterator[Target]:
    """A dedicated API and agent, a noop device with room for every create, and spares."""
    async with isolated() as isolation:
        # No rate limit in the way, nor the limit of failed authentications (the run sends
        # made-up application credentials to /identity/v3/auth/tokens); a create that names
        # no provider lands on the noop device.
        api = Api(
            isolation.env(
                rate_limit=100_000,
                rate_burst=100_000,
                auth_failure_burst=100_000,
                default_provider="noop",
            ),
            log_dir,
        )
        agent = Agent(isolation.agent_env(), log_dir, "agent-schemathesis")
        async with running(api, agent), authenticated(api.url, timeout=10) as http:
            api.start()
            agent.start()
            await api.wait_ready("/readyz")
            # Every option the run may send is then one its providers announced.
            await agent.wait_announced(api.url, ADMIN_TOKEN)
            client = LbaasClient(http)
            await client.create_device("noop", cidr="10.128.0.0/12", capacity=1_000_000)
            spare_device = await client.create_device("sim", cidr="10.250.0.0/24", capacity=1)
            spare_token = await http.post(
                "/v2/lbaas/tokens",
                json={"token": {"name": "spare", "project_id": "spare", "role": "observer"}},
            )
            assert spare_token.status_code == 201, spare_token.text
            yield Target(api, spare_device["id"], spare_token.json()["token"]["id"])


def _config(target: Target) -> str:
    """``schemathesis.toml`` for the run."""
    return f"""
# Idempotency-Key values made unique to each request, networks for the `cidr` format.
hooks = "tests.e2e.schemathesis_hooks"

[phases.stateful]
# Long enough for a whole tree along the links: load balancer, listener, pool, member and
# health monitor, each created and then read once ACTIVE.
max-steps = 12

[checks.positive_data_acceptance]
# What a schema-valid request may get besides a 2xx: 401/403/404/409/429 (Schemathesis'
# defaults: credentials, roles and quotas, objects that do not exist, object states) and
# 412 (a generated If-Match is not the object's current ETag).
expected-statuses = ["2xx", "401", "403", "404", "409", "412", "429"]

# Operations whose bodies have rules JSON Schema cannot state, so that a schema-valid body
# may still be refused with 400:
# - createLoadBalancer: the provider must have a device, a vip_address must be in a
#   device's range; and every rule below, for the tree it may carry;
# - createListener, updateListener: a default pool must have a protocol the listener can
#   forward to (and on update, insert_headers is for a listener stored as HTTP);
# - createPool: its protocol must suit the listener it is the default pool of;
# - createHealthMonitor, updateHealthMonitor: timeout must not exceed delay, HTTP fields
#   are for HTTP(S) monitors (on update: the stored delay and type count), and UDP-CONNECT
#   and SCTP monitors for UDP and SCTP pools (which take only those, TCP and HTTP);
# - createL7Policy, updateL7Policy: L7 policies are for HTTP listeners, and a redirect pool
#   must be one the listener can forward to;
# - createMember, updateMember, replaceMembers: a member (or monitor) address must not be in
#   a reserved network or a range load balancer VIPs are given from;
# - createSubnet: ip_version, gateway_ip and allocation_pools must fit its cidr, pools must
#   not overlap or hold the gateway;
# - createPort: its fixed IP must be on the subnet it names;
# - createFlavorProfile, createAvailabilityZoneProfile and their updates: the provider must
#   be one there is, and the options (a JSON object in a string) keys it takes.
[[operations]]
include-operation-id = [
    "createLoadBalancer",
    "createListener",
    "updateListener",
    "createPool",
    "createHealthMonitor",
    "updateHealthMonitor",
    "createL7Policy",
    "updateL7Policy",
    "createMember",
    "updateMember",
    "replaceMembers",
    "createSubnet",
    "createPort",
    "createFlavorProfile",
    "updateFlavorProfile",
    "createAvailabilityZoneProfile",
    "updateAvailabilityZoneProfile",
]
checks.positive_data_acceptance.enabled = false

# No 5xx, but one: a create (or a failover) may find no device of its provider with room
# or a free VIP (a spare device of capacity 1, a device the run made, filled or disabled):
# 503 with Retry-After, the documented answer. Any other 5xx still fails the run. (The
# expected statuses replace the defaults, 2xx, 3xx and 4xx, so they are listed again.)
[[operations]]
include-operation-id = ["createLoadBalancer", "failoverLoadBalancer"]
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]

# A DELETE of a load balancer or of an object in its tree answers 202: the object stays
# readable, PENDING_DELETE, until the device has removed it (Octavia's semantics); and a
# project's quotas, once reset, are its defaults. A read after such a DELETE may succeed.
[[operations]]
include-operation-id = [
    "getLoadBalancer",
    "getLoadBalancerStats",
    "getLoadBalancerStatusTree",
    "getListener",
    "getPool",
    "listMembers",
    "getMember",
    "getHealthMonitor",
    "getQuota",
]
checks.use_after_free.enabled = false

# The run must not revoke the token it authenticates with, nor disable or change
# the device every load balancer it creates is placed on, nor limit the quotas of
# its own project (its creates would be 403 for the rest of the run): these
# operations get a spare token, device and project to act on.
[[operations]]
include-operation-id = "revokeToken"
parameters = {{ "path.token_id" = "{target.spare_token_id}" }}

[[operations]]
include-operation-id = "updateQuota"
parameters = {{ "path.project_id" = "spare" }}

[[operations]]
include-operation-id = ["updateDevice", "deleteDevice"]
parameters = {{ "path.device_id" = "{target.spare_device_id}" }}

# Keystone answers its list of versions with 300 Multiple Choices (as keystoneauth and
# gophercloud take it).
[[operations]]
include-operation-id = "listIdentityVersions"
checks.positive_data_acceptance.expected-statuses = ["300"]

# A long poll lasts while the object stays PENDING_*, up to its timeout (300 s at most):
# the run keeps it short.
[[operations]]
include-operation-id = [
    "getLoadBalancer",
    "getListener",
    "getPool",
    "getMember",
    "getHealthMonitor",
]
parameters = {{ "query.timeout" = 1 }}
"""


async def test_schemathesis_finds_nothing(target: Target, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(target))
    # Every check runs (the default: naming them with --checks would override the
    # per-operation settings of the config). One worker: with more, Hypothesis' lambda
    # descriptions hit a CPython 3.11 race in ast.parse ("AST constructor recursion depth
    # mismatch"), reported as errors of the run.
    argv = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{target.api.url}/openapi.json",
        "--header",
        f"X-Auth-Token: {ADMIN_TOKEN}",
        "--phases",
        "examples,coverage,fuzzing,stateful",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_TIME),
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        # Whole bodies in the report; the token is this test's own.
        "--output-truncate",
        "false",
        "--output-sanitize",
        "false",
    ]
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = await asyncio.wait_for(process.communicate(), HARD_TIMEOUT)
    except TimeoutError:
        process.kill()
        output, _ = await process.communicate()
        pytest.fail(
            f"schemathesis ran longer than {HARD_TIMEOUT} s:\n{output.decode(errors='replace')}"
        )
    text = output.decode(errors="replace")
    print(f"schemathesis took {time.monotonic() - started:.1f} s\n{text}")
    assert process.returncode == 0, f"{text}\nAPI log:\n{target.api.log()[-5000:]}"
