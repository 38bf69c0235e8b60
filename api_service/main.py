"""``lbaas-api``: serve the API with uvicorn."""

import argparse
import sys

import uvicorn
from pydantic import ValidationError

from api_service.app import create_app
from api_service.settings import ApiSettings
from shared.logging import configure_logging
from shared.settings import invalid_settings
from shared.tracing import configure_tracing, shutdown_tracing


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
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            proxy_headers=True,
            timeout_graceful_shutdown=5,  # long polls end early rather than hold up a stop
        )
    finally:
        shutdown_tracing()
