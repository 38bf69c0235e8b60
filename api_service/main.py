"""``lbaas-api``: serve the API with uvicorn."""

import argparse
import gc
import sys

import uvicorn
from pydantic import ValidationError

from api_service.app import create_app
from api_service.settings import ApiSettings
from shared.logging import configure_logging
from shared.settings import invalid_settings
from shared.tracing import configure_tracing, shutdown_tracing

YOUNG_THRESHOLD = 50_000
"""Allocations between collections of the youngest generation (Python's default: 700)."""


def collect_less() -> None:
    """Keep the garbage collector's pauses short on the API's large, long-lived heap.

    With the defaults, a page of 100 load balancers (each an ORM object and a response model)
    sets off collections often enough that a full one, scanning every object, lands in a
    request every few seconds: 150 to 200 ms more on the list's p99 (``bench.state``). What
    start-up made lives as long as the process and is frozen out of every scan, and the
    youngest generation is collected every ``YOUNG_THRESHOLD`` allocations, so the older ones
    are too, less often.
    """
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle * 2, oldest * 10)


def main(argv: list[str] | None = None) -> None:
    try:
        settings = ApiSettings()
    except ValidationError as exc:
        sys.exit(invalid_settings("lbaas-api", exc))
    parser = argparse.ArgumentParser(prog="lbaas-api", description=__doc__)
    parser.add_argument("--host", default=settings.host, help=f"bind address ({settings.host})")
    parser.add_argument("--port", type=int, default=settings.port, help=f"port ({settings.port})")
    args = parser.parse_args(argv)
    settings = settings.model_copy(update={"host": args.host, "port": args.port})
    configure_logging(settings.log_level)
    configure_tracing("lbaas-api")
    try:
        app = create_app(settings)
        collect_less()
        uvicorn.run(
            app,
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            timeout_graceful_shutdown=5,  # long polls end early rather than hold up a stop
        )
    finally:
        shutdown_tracing()
