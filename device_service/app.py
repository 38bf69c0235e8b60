"""The management API of ``lbaas-device`` (:mod:`shared.device_api`): every call authenticated.

The secret is checked before a request is routed or its body read, so an
unauthenticated call changes nothing and learns nothing. Errors are
``application/problem+json``.
"""

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from uuid import UUID

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from device_service.haproxy import HaproxyError, Unconfirmed
from device_service.instances import Instances, Rejected, Superseded, refuse_foreign
from device_service.metrics import DeviceMetrics
from device_service.settings import DeviceSettings
from shared.device_api import (
    API_PREFIX,
    MAX_CONFIG_BYTES,
    Applied,
    ConfigIn,
    DeviceStatus,
    InstanceList,
    InstanceStatus,
)

log = logging.getLogger(__name__)

_STATUS_READS = 16
"""Instances whose stats sockets are read at the same time."""
_STATUS_WAIT = 0.5
"""Seconds a status read waits for an instance being changed before leaving it out."""


def problem(status: int, title: str, detail: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


def create_app(settings: DeviceSettings) -> FastAPI:
    metrics = DeviceMetrics()
    instances = Instances(settings, metrics)
    expected = f"Bearer {settings.secret.get_secret_value()}".encode()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.metrics_listen is not None:
            metrics.serve(settings.metrics_listen)
        await instances.adopt()
        supervisor = asyncio.create_task(instances.supervise(), name="supervise")
        log.info("managing %d load balancers in %s", len(instances.known()), settings.state_dir)
        try:
            yield
        finally:
            supervisor.cancel()
            with suppress(asyncio.CancelledError):
                await supervisor

    app = FastAPI(title="lbaas-device", version="1", lifespan=lifespan, openapi_url=None)

    @app.middleware("http")
    async def authenticate(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get("authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            challenge = {"WWW-Authenticate": "Bearer"}
            return problem(401, "Unauthorized", "A valid device secret is required.", **challenge)
        length = request.headers.get("content-length", "")
        if request.method in ("PUT", "POST") and not length.isdigit():
            return problem(411, "Length Required", "A body needs a Content-Length.")
        if length.isdigit() and int(length) > MAX_CONFIG_BYTES + 4096:
            limit = f"Bodies are limited to {MAX_CONFIG_BYTES} bytes."
            return problem(413, "Content Too Large", limit)
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        where = ".".join(str(part) for part in first["loc"])
        return problem(400, "Bad Request", f"{where}: {first['msg']}")

    @app.get("/healthz")
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "loadbalancers": len(instances.known())}

    @app.get(f"{API_PREFIX}/loadbalancers")
    async def list_() -> InstanceList:
        found = []
        for loadbalancer_id in instances.known():
            async with instances.hold(loadbalancer_id) as instance:
                meta = instance.meta()
                if meta is not None:
                    found.append(instance.describe(meta))
        return InstanceList(loadbalancers=found)

    @app.put(f"{API_PREFIX}/loadbalancers/{{loadbalancer_id}}", response_model=None)
    async def put(loadbalancer_id: UUID, body: ConfigIn) -> Applied | JSONResponse:
        started = time.perf_counter()
        outcome = "failed"
        try:
            answer = await _put(loadbalancer_id, body)
            if isinstance(answer, Applied):
                outcome = "applied" if answer.changed else "unchanged"
            elif answer.status_code == 422:
                outcome = "rejected"
            return answer
        finally:
            metrics.applies.labels(outcome).observe(time.perf_counter() - started)

    async def _put(loadbalancer_id: UUID, body: ConfigIn) -> Applied | JSONResponse:
        foreign = refuse_foreign(body.config)
        if foreign is not None:
            return problem(422, "Configuration Rejected", foreign)
        async with instances.hold(loadbalancer_id) as instance:
            try:
                applied = await instance.put(body.generation, body.config)
            except Rejected as exc:
                log.warning("rejected the configuration of %s: %s", loadbalancer_id, exc)
                return problem(422, "Configuration Rejected", str(exc))
            except Superseded as exc:
                log.info("not going back on %s: %s", loadbalancer_id, exc)
                return problem(409, "Superseded", str(exc))
            except Unconfirmed as exc:
                log.error("applying %s: %s", loadbalancer_id, exc)
                return problem(503, "Device Failure", str(exc))
            except (HaproxyError, OSError, TimeoutError):
                log.exception("applying %s failed", loadbalancer_id)
                return problem(503, "Device Failure", "The device failed; its log says why.")
        log.info(
            "%s generation %d: %s",
            loadbalancer_id,
            body.generation,
            "applied" if applied.changed else "unchanged",
        )
        return applied

    @app.delete(f"{API_PREFIX}/loadbalancers/{{loadbalancer_id}}", status_code=204)
    async def delete(loadbalancer_id: UUID) -> None:
        async with instances.hold(loadbalancer_id) as instance:
            await instance.remove()
        log.info("removed %s", loadbalancer_id)

    @app.get(f"{API_PREFIX}/status")
    async def status() -> DeviceStatus:
        gate = asyncio.Semaphore(_STATUS_READS)

        async def one(loadbalancer_id: UUID) -> InstanceStatus | None:
            """None for an instance being changed (or gone): the next read will show it."""
            async with gate:
                try:
                    async with instances.hold(loadbalancer_id, wait=_STATUS_WAIT) as instance:
                        meta = instance.meta()
                        if meta is None:
                            return None
                        try:
                            return await instance.status(meta)
                        except (OSError, TimeoutError):
                            described = instance.describe(meta).model_dump() | {"state": "down"}
                            return InstanceStatus(**described, epoch=meta.epoch)
                except TimeoutError:
                    return None

        found = await asyncio.gather(*(one(lb) for lb in instances.known()))
        return DeviceStatus(loadbalancers=[item for item in found if item is not None])

    return app
