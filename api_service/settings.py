"""Settings of the API service, from ``LBAAS_*`` environment variables."""

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from shared.settings import CommonSettings


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
    result_prefetch: int = Field(default=64, ge=1)
    default_provider: str = "haproxy"
    db_pool_size: int = Field(default=10, ge=1)

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, url: str) -> str:
        """Accept a plain ``postgresql://`` URL and use it through asyncpg."""
        for plain in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
            if url.startswith(plain):
                return "postgresql+asyncpg://" + url[len(plain) :]
        return url
