"""``lbaas-device --listen HOST:PORT --state-dir DIR``: serve a HAProxy device host until SIGTERM.

The HAProxy instances keep running when the daemon stops; the next start adopts them.
"""

import argparse
import ssl
import sys
from collections.abc import Sequence
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from device_service.app import create_app
from device_service.settings import DeviceSettings
from shared.logging import configure_logging
from shared.settings import invalid_settings
from shared.tracing import configure_tracing, shutdown_tracing

_ENVIRONMENT = """\
settings (environment):
  LBAAS_DEVICE_SECRET              the secret every call carries (or --secret-file)
  LBAAS_DEVICE_LISTEN              HOST:PORT (127.0.0.1:19443)
  LBAAS_DEVICE_STATE_DIR           one directory per load balancer (/var/lib/lbaas-device)
  LBAAS_DEVICE_HAPROXY             the HAProxy binary (haproxy)
  LBAAS_DEVICE_SUPERVISE_INTERVAL  seconds between checks that instances run (1)
  LBAAS_DEVICE_RELOAD_TIMEOUT      seconds a start or reload may take (10)
  LBAAS_DEVICE_STOP_GRACE          seconds a deleted instance may finish connections (5)
  LBAAS_DEVICE_HARD_STOP_AFTER     seconds old workers may serve after a reload (30)
  LBAAS_DEVICE_MAXCONN             connections per instance (HAProxy's default)
  LBAAS_DEVICE_TLS_CERT, _TLS_KEY  serve HTTPS with this certificate
  LBAAS_DEVICE_TLS_CLIENT_CA       and require client certificates from this CA
  LBAAS_DEVICE_METRICS_LISTEN      HOST:PORT to serve Prometheus metrics on (unset: none)
  LBAAS_DEVICE_LOG_LEVEL           DEBUG, INFO, WARNING, ERROR (INFO)
"""


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="lbaas-device",
        description="Manage the HAProxy instances of a load-balancer device host over HTTP.",
        epilog=_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--listen", help="HOST:PORT of the management API")
    parser.add_argument("--state-dir", type=Path, help="where instances live (keep it short)")
    parser.add_argument("--secret-file", type=Path, help="read the device secret from this file")
    return parser.parse_args(argv)


def settings_from(args: argparse.Namespace) -> DeviceSettings:
    overrides: dict[str, object] = {}
    if args.listen:
        overrides["listen"] = args.listen
    if args.state_dir:
        overrides["state_dir"] = args.state_dir
    if args.secret_file:
        try:
            overrides["secret"] = args.secret_file.read_text().strip()
        except OSError as exc:
            sys.exit(f"lbaas-device: cannot read --secret-file: {exc}")
    try:
        return DeviceSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        sys.exit(invalid_settings("lbaas-device", exc, prefix="LBAAS_DEVICE_"))


def main(argv: Sequence[str] | None = None) -> None:
    settings = settings_from(_arguments(argv))
    configure_logging(settings.log_level)
    configure_tracing("lbaas-device")
    tls: dict[str, object] = {}
    if settings.tls_cert is not None:
        tls = {"ssl_certfile": settings.tls_cert, "ssl_keyfile": settings.tls_key}
        if settings.tls_client_ca is not None:
            tls |= {"ssl_ca_certs": str(settings.tls_client_ca), "ssl_cert_reqs": ssl.CERT_REQUIRED}
    try:
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=5,
            **tls,  # type: ignore[arg-type]
        )
    finally:
        shutdown_tracing()
