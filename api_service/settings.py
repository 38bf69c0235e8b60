"""Settings of the API service, from ``LBAAS_*`` environment variables."""

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from api_service.secret_keys import valid_key
from shared.settings import CommonSettings

MIN_TOKEN_LENGTH = 32


class ApiSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="LBAAS_", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/lbaas"
    host: str = "127.0.0.1"
    port: int = Field(default=9876, ge=1, le=65535)
    pending_timeout: float = Field(
        default=300.0, gt=0, description="Seconds an object may stay PENDING_* before ERROR."
    )
    reaper_interval: float = Field(default=5.0, gt=0)
    outbox_interval: float = Field(
        default=1.0, gt=0, description="Seconds between outbox relay passes."
    )
    publish_timeout: float = Field(default=5.0, gt=0)
    device_sync_interval: float = Field(
        default=10.0, gt=0, description="Seconds between the syncs that tell agents of devices."
    )
    result_prefetch: int = Field(default=64, ge=1)
    default_provider: str = "haproxy"
    db_pool_size: int = Field(default=10, ge=1)
    bootstrap_admin_token: SecretStr | None = Field(
        default=None,
        min_length=MIN_TOKEN_LENGTH,
        description="An admin token (project 'admin') ensured at start-up.",
    )
    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(
        min_length=1,
        description="Comma-separated Fernet keys (lbaas-manage secrets new-key) sealing the "
        "secrets the database holds; the first seals, all open.",
    )
    rate_limit: float = Field(default=100.0, gt=0, description="Requests/s per token.")
    rate_burst: float = Field(default=500.0, ge=1, description="Burst size per token.")
    quota_loadbalancer: int = Field(default=-1, ge=-1, description="-1 is unlimited.")
    quota_listener: int = Field(default=-1, ge=-1)
    quota_pool: int = Field(default=-1, ge=-1)
    quota_member: int = Field(default=-1, ge=-1)
    quota_healthmonitor: int = Field(default=-1, ge=-1)
    quota_l7policy: int = Field(default=-1, ge=-1)
    quota_l7rule: int = Field(default=-1, ge=-1)

    @property
    def quota_defaults(self) -> dict[str, int]:
        return {
            "loadbalancer": self.quota_loadbalancer,
            "listener": self.quota_listener,
            "pool": self.quota_pool,
            "member": self.quota_member,
            "healthmonitor": self.quota_healthmonitor,
            "l7policy": self.quota_l7policy,
            "l7rule": self.quota_l7rule,
        }

    @field_validator("secret_keys", mode="before")
    @classmethod
    def _comma_separated(cls, keys: object) -> object:
        if isinstance(keys, str):
            return [key.strip() for key in keys.split(",") if key.strip()]
        return keys

    @field_validator("secret_keys")
    @classmethod
    def _fernet_keys(cls, keys: list[SecretStr]) -> list[SecretStr]:
        for position, key in enumerate(keys, 1):
            if not valid_key(key.get_secret_value()):
                raise ValueError(
                    f"key {position} is not a Fernet key (32 bytes, url-safe base64); "
                    "make one with 'lbaas-manage secrets new-key'"
                )
        return keys

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, url: str) -> str:
        """Accept a plain ``postgresql://`` URL and use it through asyncpg."""
        for plain in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url[len(plain) :]
        return url
