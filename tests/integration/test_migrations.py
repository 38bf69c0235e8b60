"""Migration 0006 on a database that has data: secrets sealed, credentials moved out of URLs,
device errors kept for admins only; and back."""

import json
import uuid

from pydantic import SecretStr

from api_service.secret_keys import SecretKeys
from tests.support.stack import SECRET_KEY, isolated

CREDENTIALS = "ops:hunter2-hunter2"
ERROR = "failed on the device: cannot write /var/lib/lbaas/x.cfg via https://10.1.2.3:9443"


async def test_0006_seals_moves_and_cleans_and_comes_back() -> None:
    keys = SecretKeys([SecretStr(SECRET_KEY)])
    async with isolated() as isolation:
        await isolation.manage("db", "downgrade", "0005")
        device, plain_device, op_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        connection = await isolation.db()
        try:
            await connection.execute(
                "INSERT INTO devices (id, name, driver, management_url, vip_cidr, capacity,"
                " enabled, loadbalancer_count, management_secret, created_at, updated_at)"
                " VALUES ($1, 'with-userinfo', 'sim', $2, '10.9.0.0/24', 1, true, 0, NULL,"
                " now(), now()), ($3, 'with-secret', 'haproxy', 'http://10.9.1.1:9', '10.9.1.0/24',"
                " 1, true, 0, 'the-plain-secret-0123', now(), now())",
                device,
                f"sim://{CREDENTIALS}@d3?latency=1",
                plain_device,
            )
            await connection.execute(
                "INSERT INTO operations (id, project_id, loadbalancer_id, device_id, action,"
                " command_action, target_type, target_id, generation, status, error, created_at)"
                " VALUES ($1, 'p', $2, $3, 'create', 'apply', 'loadbalancer', $2, 1, 'FAILED',"
                " $4, now())",
                op_id,
                uuid.uuid4(),
                device,
                ERROR,
            )
            await connection.execute(
                "INSERT INTO outbox (op_id, loadbalancer_id, routing_key, payload, created_at,"
                " attempts) VALUES ($1, $2, '0', '{\"command\": 1}', now(), 0)",
                op_id,
                uuid.uuid4(),
            )
        finally:
            await connection.close()

        await isolation.manage("db", "upgrade")
        rows = {
            row["name"]: row
            for row in await isolation.fetch(
                "SELECT name, management_url, management_secret FROM devices"
            )
        }
        assert rows["with-userinfo"]["management_url"] == "sim://d3?latency=1"
        assert keys.open(rows["with-userinfo"]["management_secret"]) == CREDENTIALS
        assert keys.open(rows["with-secret"]["management_secret"]) == "the-plain-secret-0123"
        [outbox] = await isolation.fetch("SELECT payload FROM outbox")
        assert keys.open(outbox["payload"]) == '{"command": 1}'
        [operation] = await isolation.fetch("SELECT error, error_detail FROM operations")
        assert operation["error_detail"] == ERROR
        assert "/var/lib" not in operation["error"] and "10.1.2.3" not in operation["error"]

        await isolation.manage("db", "downgrade", "0005")
        secrets = {
            row["name"]: row["management_secret"]
            for row in await isolation.fetch("SELECT name, management_secret FROM devices")
        }
        assert secrets == {"with-userinfo": CREDENTIALS, "with-secret": "the-plain-secret-0123"}
        [outbox] = await isolation.fetch("SELECT payload FROM outbox")
        assert outbox["payload"] == '{"command": 1}'


async def test_every_migration_comes_back_and_goes_again() -> None:
    """From head to an empty database and back to head: every downgrade undoes its upgrade."""
    async with isolated() as isolation:
        await isolation.manage("db", "downgrade", "base")
        connection = await isolation.db()
        try:
            tables = await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'"
            )
            assert [t["tablename"] for t in tables] == []
        finally:
            await connection.close()
        await isolation.manage("db", "upgrade", "head")


async def test_0007_gives_device_ranges_subnets_and_load_balancers_ports() -> None:
    """Devices of one ``vip_cidr`` share its subnet; each load balancer gets its VIP port."""
    async with isolated() as isolation:
        await isolation.manage("db", "downgrade", "0006")
        first, second, third, lb_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        connection = await isolation.db()
        try:
            await connection.execute(
                "INSERT INTO devices (id, name, driver, management_url, vip_cidr, capacity,"
                " enabled, loadbalancer_count, created_at, updated_at) VALUES"
                " ($1, 'a', 'noop', 'noop://a', '10.9.0.0/24', 5, true, 1, now(), now()),"
                " ($2, 'b', 'noop', 'noop://b', '10.9.0.0/24', 5, true, 0, now(), now()),"
                " ($3, 'c', 'noop', 'noop://c', '10.9.1.0/30', 5, true, 0, now(), now())",
                first,
                second,
                third,
            )
            await connection.execute(
                "INSERT INTO loadbalancers (id, project_id, name, description, admin_state_up,"
                " provisioning_status, operating_status, provider, device_id, vip_address, tags,"
                " generation, changed_generation, deleting, vip_subnet_id, created_at,"
                " updated_at) VALUES ($1, 'web', 'lb', '', true, 'ACTIVE', 'ONLINE', 'noop', $2,"
                " '10.9.0.7', '{}', 1, 1, false, 'made-up', now(), now())",
                lb_id,
                first,
            )
        finally:
            await connection.close()

        await isolation.manage("db", "upgrade", "0007")
        subnets = {
            str(row["cidr"]): row
            for row in await isolation.fetch(
                "SELECT id, network_id, cidr, allocation_pools FROM vip_subnets"
            )
        }
        assert set(subnets) == {"10.9.0.0/24", "10.9.1.0/30"}
        assert json.loads(subnets["10.9.1.0/30"]["allocation_pools"]) == [
            {"start": "10.9.1.1", "end": "10.9.1.2"}
        ]
        served = await isolation.fetch("SELECT device_id, subnet_id FROM device_subnets")
        shared = subnets["10.9.0.0/24"]["id"]
        assert {(row["device_id"], row["subnet_id"]) for row in served} == {
            (first, shared),
            (second, shared),
            (third, subnets["10.9.1.0/30"]["id"]),
        }
        [port] = await isolation.fetch(
            "SELECT subnet_id, project_id, host(ip_address) AS ip, device_owner, loadbalancer_id"
            " FROM vip_ports"
        )
        assert dict(port) == {
            "subnet_id": shared,
            "project_id": "web",
            "ip": "10.9.0.7",
            "device_owner": "Octavia",
            "loadbalancer_id": lb_id,
        }
        [lb] = await isolation.fetch("SELECT vip_subnet_id, vip_network_id FROM loadbalancers")
        assert (lb["vip_subnet_id"], lb["vip_network_id"]) == (
            str(shared),
            str(subnets["10.9.0.0/24"]["network_id"]),
        )

        await isolation.manage("db", "downgrade", "0006")
        tables = await isolation.fetch(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE 'vip_%' OR tablename ="
            " 'device_subnets'"
        )
        assert tables == []
        assert len(await isolation.fetch("SELECT id FROM loadbalancers")) == 1


async def test_0008_adds_the_providers_table_and_takes_it_away() -> None:
    async with isolated() as isolation:
        insert = (
            "INSERT INTO providers (name, description, capabilities, announced_by, announced_at)"
            " VALUES ('haproxy', 'HAProxy', '{\"pool_protocols\": [\"PROXY\"]}', 'agent-1', now())"
        )
        connection = await isolation.db()
        try:
            await connection.execute(insert)
        finally:
            await connection.close()
        [row] = await isolation.fetch("SELECT * FROM providers")
        assert row["flavor_capabilities"] == "{}" == row["availability_zone_capabilities"]

        await isolation.manage("db", "downgrade", "0007")
        [gone] = await isolation.fetch("SELECT to_regclass('providers') AS name")
        assert gone["name"] is None

        await isolation.manage("db", "upgrade")
        assert await isolation.fetch("SELECT name FROM providers") == []
