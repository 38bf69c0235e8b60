"""Settings of ``lbaas-device``, from ``LBAAS_DEVICE_*`` variables (flags override a few)."""

from pathlib import Path

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.logging import LogLevel

MAX_SOCKET_PATH = 97
"""``sun_path`` holds 108 bytes, and HAProxy first binds ``<path>.<pid>.tmp`` (its limit is 97)."""
INSTANCE_SOCKET_SUFFIX = len("/0123456789abcdef0123456789abcdef/master.sock")


class DeviceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LBAAS_DEVICE_", extra="ignore")

    listen: str = Field(default="127.0.0.1:19443", pattern=r"^[A-Za-z0-9.\-]+:[0-9]{1,5}$")
    state_dir: Path = Path("/var/lib/lbaas-device")
    secret: SecretStr = Field(
        min_length=16, description="What every call must carry as 'Authorization: Bearer …'."
    )
    haproxy: str = Field(default="haproxy", description="The HAProxy binary.")
    supervise_interval: float = Field(
        default=1.0, gt=0, description="Seconds between checks that every instance still runs."
    )
    reload_timeout: float = Field(
        default=10.0, gt=0, description="Seconds a start or reload has to show its new worker."
    )
    stop_grace: float = Field(
        default=5.0, ge=0, description="Seconds a stopping instance may finish its connections."
    )
    hard_stop_after: int = Field(
        default=30, ge=1, description="Seconds an old worker may serve after a reload."
    )
    maxconn: int | None = Field(
        default=None, ge=1, description="Connections one instance accepts (HAProxy's default)."
    )
    tls_cert: FilePath | None = None
    tls_key: FilePath | None = None
    tls_client_ca: FilePath | None = Field(
        default=None, description="Require client certificates signed by this CA (mutual TLS)."
    )
    metrics_listen: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9.\-]+:[0-9]{1,5}$",
        description="HOST:PORT to serve Prometheus metrics on (unauthenticated: keep it private).",
    )
    log_level: LogLevel = "INFO"

    @model_validator(mode="after")
    def _tls_complete(self) -> "DeviceSettings":
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        return self

    @field_validator("state_dir")
    @classmethod
    def _short_enough(cls, path: Path) -> Path:
        absolute = path.absolute()
        if len(str(absolute)) + INSTANCE_SOCKET_SUFFIX > MAX_SOCKET_PATH:
            raise ValueError(
                f"{absolute} is too long: HAProxy's sockets under it would exceed "
                f"{MAX_SOCKET_PATH} bytes; use a state directory of at most "
                f"{MAX_SOCKET_PATH - INSTANCE_SOCKET_SUFFIX} characters"
            )
        return absolute

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])
