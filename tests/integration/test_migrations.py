"""Migration 0006 on a database that has data: secrets sealed, credentials moved out of URLs,
device errors kept for admins only; and back."""

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
