"""``lbaas-manage``: operator commands (database migrations)."""

import argparse
import asyncio
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

import migrations
from api_service.settings import ApiSettings


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def create_database(database_url: str) -> bool:
    """Create the database named in ``database_url`` unless it exists; True if created."""
    url = make_url(database_url)
    admin = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, password=url.password, database="postgres"
    )
    try:
        if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database):
            return False
        await admin.execute(f'CREATE DATABASE "{url.database}"')
        return True
    finally:
        await admin.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="lbaas-manage", description=__doc__)
    commands = parser.add_subparsers(dest="group", required=True)
    db = commands.add_parser("db", help="database schema").add_subparsers(
        dest="action", required=True
    )
    db.add_parser("upgrade", help="migrate to the newest revision").add_argument(
        "revision", nargs="?", default="head"
    )
    db.add_parser("downgrade", help="migrate back to a revision").add_argument("revision")
    db.add_parser("current", help="show the applied revision")
    db.add_parser("create", help="create the database unless it exists")
    args = parser.parse_args(argv)

    database_url = ApiSettings().database_url
    config = alembic_config(database_url)
    if args.action == "create":
        created = asyncio.run(create_database(database_url))
        print(f"database {make_url(database_url).database} {'created' if created else 'exists'}")
    elif args.action == "upgrade":
        command.upgrade(config, args.revision)
    elif args.action == "downgrade":
        command.downgrade(config, args.revision)
    else:
        command.current(config)
