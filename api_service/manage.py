"""``lbaas-manage``: operator commands (database migrations)."""

import argparse
from pathlib import Path

from alembic import command
from alembic.config import Config

import migrations
from api_service.settings import ApiSettings


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


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
    args = parser.parse_args(argv)

    config = alembic_config(ApiSettings().database_url)
    if args.action == "upgrade":
        command.upgrade(config, args.revision)
    elif args.action == "downgrade":
        command.downgrade(config, args.revision)
    else:
        command.current(config)
