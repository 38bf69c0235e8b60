"""``lbaas-manage``: operator commands (migrations, broker topology, API tokens, devices, the
keys that seal secrets, the OpenAPI document)."""

import argparse
import asyncio
import json
import re
import sys
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import aio_pika
import asyncpg
from aio_pika.abc import AbstractConnection
from alembic import command
from alembic.config import Config
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.engine import make_url

import migrations
from api_service import openapi
from api_service.db.engine import create_engine, plain_dsn, session_factory
from api_service.db.models import Device
from api_service.errors import DomainError
from api_service.schemas.devices import DeviceCreate, DeviceUpdate
from api_service.secret_keys import SecretKeys, Unsealable, new_key
from api_service.services.devices import DeviceService
from api_service.services.sealed import reseal
from api_service.services.tokens import Role, TokenService, VerifiedTokens
from api_service.settings import ApiSettings
from shared.settings import invalid_settings
from shared.topology import Names, declare_topology

_DURATION = re.compile(r"\A(\d+)([smhd])\Z")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


async def create_database(database_url: str) -> bool:
    """Create the database named in ``database_url`` unless it exists; True if created."""
    url = make_url(database_url)
    admin = await asyncpg.connect(
        plain_dsn(url.set(database="postgres").render_as_string(hide_password=False))
    )
    try:
        if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database):
            return False
        await admin.execute(f'CREATE DATABASE "{url.database}"')
        return True
    finally:
        await admin.close()


async def declare(settings: ApiSettings) -> None:
    """Declare the AMQP topology once, as an operator step (the services only look it up)."""
    connection = await _connect_any(settings.amqp_urls)
    async with connection:
        channel = await connection.channel()
        names = Names(settings.queue_prefix, settings.command_shards)
        await declare_topology(channel, names, settings.delivery_limit)


async def _connect_any(urls: list[str]) -> AbstractConnection:
    """A connection to the first of a cluster's nodes that answers."""
    for url in urls[:-1]:
        try:
            return await aio_pika.connect(url, timeout=5)
        except (OSError, aio_pika.exceptions.AMQPConnectionError):
            continue
    return await aio_pika.connect(urls[-1], timeout=5)


def duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``15m`` or ``90s``."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30d, 12h, 15m or 90s")
    return timedelta(**{_UNITS[match[2]]: int(match[1])})


async def _tokens(settings: ApiSettings, args: argparse.Namespace) -> None:
    engine = create_engine(settings)
    service = TokenService(session_factory(engine), VerifiedTokens(ttl=0))
    try:
        if args.action == "create":
            issued = await service.issue(
                name=args.name,
                project_id=args.project,
                role=Role(args.role),
                expires_in=args.expires,
                value=sys.stdin.readline().strip() if args.stdin else None,
            )
            print(json.dumps({**_shown(issued.token), "token": issued.value}))
        elif args.action == "list":
            for token in await service.list():
                print(json.dumps(_shown(token)))
        else:
            print(json.dumps(_shown(await service.revoke(args.token_id))))
    finally:
        await engine.dispose()


async def _ensure_device(settings: ApiSettings, args: argparse.Namespace) -> None:
    """Register the device, or bring the one of that name up to date (its secret included)."""
    fields = {
        "name": args.name,
        "driver": args.driver,
        "management_url": args.url,
        "vip_cidr": args.vip_cidr,
        "capacity": args.capacity,
    }
    if args.secret_file is not None:
        fields["management_secret"] = args.secret_file.read_text().strip()
    engine = create_engine(settings)
    sessions = session_factory(engine)
    service = DeviceService(sessions, SecretKeys(settings.secret_keys))
    try:
        async with sessions() as session:
            existing = await session.scalar(select(Device.id).where(Device.name == args.name))
        if existing is None:
            device = await service.create(DeviceCreate.model_validate(fields))
        else:
            device = await service.update(existing, DeviceUpdate.model_validate(fields))
        print(json.dumps({"id": str(device.id), "name": device.name, "created": existing is None}))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        )
        raise SystemExit(f"lbaas-manage device ensure: {problems}") from None
    except DomainError as exc:
        raise SystemExit(f"lbaas-manage device ensure: {exc}") from None
    finally:
        await engine.dispose()


async def _reseal(settings: ApiSettings) -> None:
    engine = create_engine(settings)
    try:
        done = await reseal(session_factory(engine), SecretKeys(settings.secret_keys))
    except Unsealable as exc:
        raise SystemExit(f"lbaas-manage secrets reseal: nothing changed: {exc}") from None
    finally:
        await engine.dispose()
    print(json.dumps({"devices": done.devices, "commands": done.commands}))


def _shown(token: object) -> dict[str, str | None]:
    fields = ("id", "name", "project_id", "role", "expires_at", "revoked_at", "last_used_at")
    return {name: None if (v := getattr(token, name)) is None else str(v) for name in fields}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lbaas-manage", description=__doc__)
    groups = parser.add_subparsers(dest="group", required=True)
    db = groups.add_parser("db", help="database schema").add_subparsers(
        dest="action", required=True
    )
    db.add_parser("upgrade", help="migrate to the newest revision").add_argument(
        "revision", nargs="?", default="head"
    )
    db.add_parser("downgrade", help="migrate back to a revision").add_argument("revision")
    db.add_parser("current", help="show the applied revision")
    db.add_parser("create", help="create the database unless it exists")

    broker = groups.add_parser("broker", help="RabbitMQ topology").add_subparsers(
        dest="action", required=True
    )
    broker.add_parser(
        "declare", help="declare every exchange and queue (as a user allowed to configure)"
    )

    token = groups.add_parser("token", help="API tokens").add_subparsers(
        dest="action", required=True
    )
    create = token.add_parser("create", help="issue a token; its secret is printed once")
    create.add_argument("--project", required=True)
    create.add_argument("--role", required=True, choices=[role.value for role in Role])
    create.add_argument("--name", default="cli")
    create.add_argument("--expires", type=duration, help="e.g. 30d, 12h (default: never)")
    create.add_argument(
        "--stdin",
        action="store_true",
        help="import the secret read from standard input (a bootstrap token) instead of "
        "making one (never on the command line, where ps shows it)",
    )
    token.add_parser("list", help="list tokens (never their secrets)")
    token.add_parser("revoke", help="revoke a token at once").add_argument("token_id", type=UUID)

    device = groups.add_parser("device", help="devices").add_subparsers(
        dest="action", required=True
    )
    ensure = device.add_parser("ensure", help="register a device, or update the one of that name")
    ensure.add_argument("name")
    ensure.add_argument("--driver", required=True)
    ensure.add_argument("--url", required=True, help="its management_url")
    ensure.add_argument("--vip-cidr", required=True, help="the range its VIPs come from")
    ensure.add_argument("--capacity", type=int, default=100)
    ensure.add_argument("--secret-file", type=Path, help="a file holding its management secret")

    keys = groups.add_parser("secrets", help="the keys that seal secrets").add_subparsers(
        dest="action", required=True
    )
    keys.add_parser("new-key", help="print a new key for LBAAS_SECRET_KEYS (nothing else needed)")
    keys.add_parser("reseal", help="seal every stored secret under the first of LBAAS_SECRET_KEYS")

    document = groups.add_parser(
        "openapi", help="write the OpenAPI document (no database or broker needed)"
    )
    document.add_argument(
        "file", nargs="?", type=Path, help="where to write it (default: standard output)"
    )
    return parser


def _write_openapi(file: Path | None) -> None:
    text = openapi.published()
    if file is None:
        sys.stdout.write(text)
    else:
        file.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.group == "openapi":
        _write_openapi(args.file)
        return
    if args.group == "secrets" and args.action == "new-key":
        print(new_key())
        return
    try:
        settings = ApiSettings()
    except ValidationError as exc:
        sys.exit(invalid_settings("lbaas-manage", exc))
    if args.group == "secrets":
        asyncio.run(_reseal(settings))
        return
    if args.group == "token":
        asyncio.run(_tokens(settings, args))
        return
    if args.group == "device":
        asyncio.run(_ensure_device(settings, args))
        return
    if args.group == "broker":
        asyncio.run(declare(settings))
        print(f"topology {settings.queue_prefix!r} declared ({settings.command_shards} shards)")
        return
    config = alembic_config(settings.database_url)
    if args.action == "create":
        created = asyncio.run(create_database(settings.database_url))
        name = make_url(settings.database_url).database
        print(f"database {name} {'created' if created else 'exists'}")
    elif args.action == "upgrade":
        command.upgrade(config, args.revision)
    elif args.action == "downgrade":
        command.downgrade(config, args.revision)
    else:
        command.current(config)
