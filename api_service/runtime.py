"""What lives as long as the API process: engine, broker, services and background loops."""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from aio_pika.abc import AbstractRobustConnection
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from api_service.db.engine import (
    SessionFactory,
    create_engine,
    plain_dsn,
    read_session_factory,
    session_factory,
)
from api_service.db.notifications import SettledFeed
from api_service.idempotency import purge_expired_keys
from api_service.messaging.commands import CommandPublisher
from api_service.messaging.providers import ProviderConsumer
from api_service.messaging.results import ResultConsumer
from api_service.messaging.status import StatusConsumer
from api_service.metrics import Metrics
from api_service.ratelimit import FailedAuthentications, RateLimits
from api_service.resources.catalog import RESOURCES
from api_service.secret_keys import SecretKeys
from api_service.services.addresses import MemberAddresses
from api_service.services.census import take_census
from api_service.services.changes import Changes
from api_service.services.definitions import DEFINITIONS, DefinitionService
from api_service.services.devices import DeviceService, claim_syncs
from api_service.services.identity import SEALING_PURPOSE, IdentityService
from api_service.services.loadbalancers import LoadBalancerService
from api_service.services.networks import NetworkService
from api_service.services.operations import OperationService
from api_service.services.providers import ProviderService
from api_service.services.quotas import QuotaService
from api_service.services.reaper import run_reaper
from api_service.services.resource import ResourceService
from api_service.services.tokens import Role, TokenService, VerifiedTokens
from api_service.services.waiting import WaitSlots
from api_service.settings import ApiSettings
from shared.broker import Broker
from shared.topology import Names

log = logging.getLogger(__name__)

STOP_STEP_TIMEOUT = 5.0
"""Seconds each step of a shutdown may take before it is given up on."""


@dataclass
class Runtime:
    settings: ApiSettings
    engine: AsyncEngine
    sessions: SessionFactory
    broker: Broker
    commands: CommandPublisher
    results: ResultConsumer
    loadbalancers: LoadBalancerService
    resources: dict[str, ResourceService[Any]]
    """The generic service of each tree resource, by its key."""
    definitions: dict[str, DefinitionService[Any]]
    """The generic service of each operator-defined kind, by ``Definition.kind``."""
    devices: DeviceService
    operations: OperationService
    networks: NetworkService
    providers: ProviderService
    feed: SettledFeed
    metrics: Metrics
    tokens: TokenService
    quotas: QuotaService
    rate_limits: RateLimits
    failed_authentications: FailedAuthentications
    identity: IdentityService
    waits: WaitSlots
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    bootstrapped: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the bootstrap admin token (if configured) is stored."""

    @classmethod
    def build(cls, settings: ApiSettings, metrics: Metrics) -> "Runtime":
        engine = create_engine(settings)
        sessions = session_factory(engine)
        reads = read_session_factory(engine)
        names = Names(settings.queue_prefix, settings.command_shards)
        keys = SecretKeys(settings.secret_keys)

        async def on_connected(connection: AbstractRobustConnection) -> None:
            await commands.on_connected(connection)
            await results.on_connected(connection)
            await status.on_connected(connection)
            await providers.on_connected(connection)

        broker = Broker(settings.amqp_urls, on_connected)
        commands = CommandPublisher(
            broker,
            names,
            engine,
            keys,
            publish_timeout=settings.publish_timeout,
            backlog=metrics.outbox_backlog,
        )
        status = StatusConsumer(names, sessions, keys)
        providers = ProviderConsumer(names, sessions)
        results = ResultConsumer(
            names,
            sessions,
            prefetch=settings.result_prefetch,
            metrics=metrics,
        )
        quotas = QuotaService(sessions, settings.quota_defaults)
        verified = VerifiedTokens(settings.token_cache_seconds)
        tokens = TokenService(sessions, verified)
        member_addresses = MemberAddresses(
            tuple(settings.reserved_member_networks), settings.allow_loopback_members
        )
        changes = Changes(
            sessions, commands.publish_new, quotas, keys, settings.command_shards, member_addresses
        )
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            broker=broker,
            commands=commands,
            results=results,
            loadbalancers=LoadBalancerService(sessions, changes, settings.default_provider),
            resources={r.key: ResourceService(r, reads, changes) for r in RESOURCES},
            definitions={d.kind: DefinitionService(sessions, d) for d in DEFINITIONS},
            devices=DeviceService(sessions, keys),
            operations=OperationService(sessions),
            networks=NetworkService(sessions),
            providers=ProviderService(sessions),
            feed=SettledFeed(plain_dsn(settings.database_url), verified),
            metrics=metrics,
            tokens=tokens,
            quotas=quotas,
            rate_limits=RateLimits(settings.rate_limit, settings.rate_burst),
            failed_authentications=FailedAuthentications(
                settings.auth_failure_rate, settings.auth_failure_burst
            ),
            identity=IdentityService(
                tokens,
                sessions,
                keys.derived(SEALING_PURPOSE),
                timedelta(seconds=settings.identity_token_ttl),
            ),
            waits=WaitSlots(settings.max_waits_per_token, metrics.long_polls),
        )

    async def start(self) -> None:
        if self.settings.metrics_port:
            self.metrics.serve(self.settings.metrics_host, self.settings.metrics_port)
        self.broker.start()
        self.feed.start()
        self.tasks = [
            asyncio.create_task(
                self.commands.run_relay(self.settings.outbox_interval), name="relay"
            ),
            asyncio.create_task(
                self.commands.run_device_syncs(
                    partial(
                        claim_syncs,
                        self.sessions,
                        self.devices.keys,
                        self.settings.command_shards,
                        self.settings.device_sync_interval,
                    ),
                    self.settings.device_sync_interval,
                ),
                name="device-syncs",
            ),
            asyncio.create_task(
                run_reaper(
                    self.sessions,
                    self.settings.pending_timeout,
                    self.settings.reaper_interval,
                    self.metrics.pending,
                ),
                name="reaper",
            ),
            asyncio.create_task(self._census(self.settings.reaper_interval), name="census"),
            asyncio.create_task(
                self._purge_idempotency_keys(self.settings.idempotency_purge_interval),
                name="idempotency-purge",
            ),
        ]
        if self.settings.bootstrap_admin_token is None:
            self.bootstrapped.set()
        else:
            secret = self.settings.bootstrap_admin_token.get_secret_value()
            self.tasks.append(
                asyncio.create_task(self._bootstrap_admin(secret), name="bootstrap-admin")
            )

    async def _census(self, interval: float) -> None:
        """Forever: the census gauges, from the database."""
        while True:
            try:
                async with self.sessions() as session:
                    census = await take_census(session)
                self.metrics.record(census)
            except Exception:
                log.warning("census pass failed", exc_info=True)
            await asyncio.sleep(interval)

    async def _purge_idempotency_keys(self, interval: float) -> None:
        """Forever: delete the Idempotency-Keys older than 24 h (every replica may)."""
        while True:
            try:
                purged = await purge_expired_keys(self.sessions)
                if purged:
                    log.info("purged %d expired Idempotency-Keys", purged)
            except Exception:
                log.warning("Idempotency-Key purge failed", exc_info=True)
            await asyncio.sleep(interval)

    async def _bootstrap_admin(self, secret: str) -> None:
        """Make sure the bootstrap admin token exists, retrying while the database is away."""
        while True:
            try:
                await self.tokens.issue(
                    name="bootstrap-admin", project_id="admin", role=Role.ADMIN, value=secret
                )
                self.bootstrapped.set()
                return
            except (OSError, DBAPIError) as exc:
                log.warning("cannot store the bootstrap admin token yet: %s", type(exc).__name__)
                await asyncio.sleep(1)

    async def stop(self) -> None:
        """Stop the loops, the feed, the broker connection, the marking of published commands
        and the pool, in that order; a step that hangs is logged and left behind after
        ``STOP_STEP_TIMEOUT``, so that a SIGTERM always ends the process."""
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            _, hung = await asyncio.wait(self.tasks, timeout=STOP_STEP_TIMEOUT)
            if hung:
                names = ", ".join(sorted(task.get_name() for task in hung))
                log.error("shutdown: %s did not stop in %s s", names, STOP_STEP_TIMEOUT)
        steps: list[tuple[str, Awaitable[object]]] = [
            ("the settled feed", self.feed.stop()),
            ("the broker connection", self.broker.close()),
            ("the published marks", self.commands.marked()),
            ("the database pool", self.engine.dispose()),
        ]
        for name, step in steps:
            try:
                async with asyncio.timeout(STOP_STEP_TIMEOUT):
                    await step
            except TimeoutError:
                log.error("shutdown: %s did not stop in %s s", name, STOP_STEP_TIMEOUT)

    async def database_ok(self) -> bool:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                async with self.engine.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                return True
        return False


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    """The dependency (``async``: FastAPI runs a plain ``def`` dependency in a worker thread)."""
    return runtime_of(request)
