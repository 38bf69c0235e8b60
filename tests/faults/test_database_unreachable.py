"""The API starts and says what is missing when PostgreSQL cannot be reached."""

from pathlib import Path

from tests.support.client import authenticated
from tests.support.stack import Api, Isolation, delete_topology, free_port, running


async def test_readyz_names_postgresql_when_it_is_unreachable(log_dir: Path) -> None:
    isolation = Isolation(broker_users=False)
    env = {
        **isolation.env(),
        "LBAAS_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere",
    }
    api = Api(env, log_dir)
    async with running(api), authenticated(api.url) as http:
        api.start()
        await api.wait_ready("/healthz")
        response = await http.get("/readyz")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert "PostgreSQL" in response.json()["detail"]
        assert api.running
    await delete_topology(isolation.amqp_url, isolation.names)
