"""``lbaas-manage token``: issue, list and revoke tokens from the operator's shell."""

import asyncio
import json
import subprocess
from typing import Any

from tests.support.client import LbaasClient, authenticated
from tests.support.stack import BIN, Api, Isolation


async def manage(isolation: Isolation, *argv: str) -> list[dict[str, Any]]:
    process = await asyncio.create_subprocess_exec(
        str(BIN / "lbaas-manage"),
        "token",
        *argv,
        env=isolation.api_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines()]


async def test_token_lifecycle_from_the_command_line(
    api: Api, isolation: Isolation, client: LbaasClient
) -> None:
    (issued,) = await manage(
        isolation,
        "create",
        "--project",
        "cli-proj",
        "--role",
        "member",
        "--name",
        "cli-test",
        "--expires",
        "1d",
    )
    assert issued["role"] == "member" and issued["expires_at"] is not None
    secret = issued["token"]
    assert len(secret) >= 43

    async with authenticated(api.url, secret) as http:
        assert (await http.get("/v2/lbaas/loadbalancers")).status_code == 200
        listed = await manage(isolation, "list")
        shown = next(t for t in listed if t["id"] == issued["id"])
        assert "token" not in shown and shown["last_used_at"] is not None
        assert all(secret not in json.dumps(t) for t in listed)

        (revoked,) = await manage(isolation, "revoke", issued["id"])
        assert revoked["revoked_at"] is not None
        assert (await http.get("/v2/lbaas/loadbalancers")).status_code == 401
