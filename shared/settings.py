"""Settings common to both services, read from ``LBAAS_*`` environment variables.

Each service extends :class:`CommonSettings` with its own fields in one class
(``api_service.settings.ApiSettings``, ``agent_service.settings.AgentSettings``).
"""

from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.logging import LogLevel

_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # Rust regex: $ is the very end


class CommonSettings(BaseSettings):
    """What both services must agree on: the broker, its names, and logging."""

    model_config = SettingsConfigDict(env_prefix="LBAAS_", extra="ignore")

    amqp_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/",
        description="The broker's URL; for a cluster, one URL per node, comma-separated "
        "(a lost node's clients move to the next).",
    )
    queue_prefix: str = Field(default="lbaas", pattern=_NAME_PATTERN)
    command_shards: int = Field(default=4, ge=1, le=256)
    delivery_limit: int = Field(
        default=3, ge=1, description="Deliveries of one command before it is dead-lettered."
    )
    log_level: LogLevel = "INFO"

    @field_validator("amqp_url")
    @classmethod
    def _amqp_urls(cls, urls: str) -> str:
        for position, url in enumerate(urls.split(","), 1):
            try:
                parts = urlsplit(url.strip())
                parts.port  # noqa: B018 - raises on a bad port
            except ValueError as exc:
                raise ValueError(f"URL {position} is not a URL: {exc}") from None
            if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
                raise ValueError(f"URL {position} must be an amqp:// or amqps:// URL with a host")
        return urls

    @property
    def amqp_urls(self) -> list[str]:
        """The broker's nodes, in the order they are tried."""
        return [url.strip() for url in self.amqp_url.split(",")]


def invalid_settings(program: str, error: ValidationError, prefix: str = "LBAAS_") -> str:
    """What ``program`` prints when a setting is invalid: each variable named, no value shown
    (values may be secrets)."""
    lines = [f"{program}: invalid settings:"]
    for item in error.errors(include_input=False, include_url=False):
        name = str(item["loc"][0]).upper() if item["loc"] else "settings"
        variable = name if name.startswith("LBAAS_") else prefix + name
        lines.append(f"  {variable}: {item['msg']}")
    return "\n".join(lines)
