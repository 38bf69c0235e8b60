"""Settings of the API service, from ``LBAAS_*`` environment variables."""

from ipaddress import ip_address
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from api_service.secret_keys import valid_key
from shared.settings import CommonSettings

MIN_TOKEN_LENGTH = 32
MAX_IDENTITY_TOKEN_TTL = 7 * 24 * 3600
_REGION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"  # Rust regex: $ is the very end


class ApiSettings(CommonSettings):
    model_config = SettingsConfigDict(env_prefix="LBAAS_", extra="ignore")

    database_url: str = "postgresql://postgres@127.0.0.1:5432/lbaas"
    host: str = "127.0.0.1"
    port: int = Field(default=9876, ge=1, le=65535)
    public_url: str | None = Field(
        default=None,
        description="The API's URL as its clients reach it, http(s)://HOST[:PORT][/PREFIX]: "
        "the base of every absolute link it answers (Location, *_links), never the request's "
        "Host. Default: http://LBAAS_HOST:LBAAS_PORT (a wildcard host as the loopback).",
    )
    metrics_host: str = Field(
        default="127.0.0.1", description="Where the Prometheus metrics are served."
    )
    metrics_port: int = Field(
        default=9879, ge=0, le=65535, description="Serve Prometheus metrics on this port; 0: not."
    )
    token_cache_seconds: float = Field(
        default=10.0,
        ge=0,
        description="How long a replica trusts a token it found live without reading it again "
        "(0: read it on every request). A revocation reaches every replica at once through the "
        "database, at the latest after this long.",
    )
    max_waits_per_token: int = Field(
        default=32, ge=1, description="Long polls (wait_for) one token may hold at once."
    )
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
    db_pool_size: int = Field(
        default=20,
        ge=1,
        description=(
            "Database connections each API process keeps open, and uses at most: a request, "
            "long poll or result that finds them all in use waits for one (503 after 30 s)."
        ),
    )
    bootstrap_admin_token: SecretStr | None = Field(
        default=None, description="An admin token (project 'admin') ensured at start-up."
    )
    secret_keys: Annotated[list[SecretStr], NoDecode] = Field(
        min_length=1,
        description="Comma-separated Fernet keys (lbaas-manage secrets new-key) sealing the "
        "secrets the database holds; the first seals, all open.",
    )
    rate_limit: float = Field(default=100.0, gt=0, description="Requests/s per token.")
    rate_burst: float = Field(default=500.0, ge=1, description="Burst size per token.")
    auth_failure_rate: float = Field(
        default=1.0, gt=0, description="Failed authentications/s per client address."
    )
    auth_failure_burst: float = Field(
        default=200.0, ge=1, description="Failed authentications in a burst per client address."
    )
    identity_token_ttl: int = Field(
        default=3600,
        ge=1,
        le=MAX_IDENTITY_TOKEN_TTL,
        description="Seconds a Keystone token (POST /identity/v3/auth/tokens) is valid at "
        "most; never beyond its application credential's expiry.",
    )
    identity_region: str = Field(
        default="RegionOne",
        pattern=_REGION_PATTERN,
        description="The region of this service's endpoints in the Keystone catalog.",
    )
    idempotency_purge_interval: float = Field(
        default=300.0, gt=0, description="Seconds between purges of Idempotency-Keys past 24 h."
    )
    allow_loopback_members: bool = Field(
        default=False,
        description="Let members be loopback addresses (a local stack, tests): the device's own.",
    )
    reserved_member_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated networks no member address may be in (Octavia's "
        "reserved_ips), besides the ones always refused.",
    )
    status_codes: Literal["async", "octavia"] = Field(
        default="async",
        description="What changes answer: async, 202 Accepted for each; octavia, as Octavia "
        "does (201 on create, 200 on update, 204 without a body on delete).",
    )
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

    @field_validator("secret_keys", "reserved_member_networks", mode="before")
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

    @field_validator("bootstrap_admin_token")
    @classmethod
    def _long_enough(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and len(token.get_secret_value()) < MIN_TOKEN_LENGTH:
            raise ValueError(f"must be at least {MIN_TOKEN_LENGTH} characters")
        return token

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, url: str | None) -> str | None:
        return None if url is None else checked_public_url(url)

    @property
    def links_base_url(self) -> str:
        """Where absolute links start: ``public_url``, or the URL of the API's bind address."""
        if self.public_url is not None:
            return self.public_url
        return f"http://{_url_host(self.host)}:{self.port}"

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, url: str) -> str:
        """Accept a plain ``postgresql://`` URL and use it through asyncpg."""
        for plain in ("postgresql://", "postgres://", "postgresql+psycopg2://"):
            if url.startswith(plain):
                url = "postgresql+asyncpg://" + url[len(plain) :]
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise ValueError("is not a database URL") from None
        if parsed.drivername != "postgresql+asyncpg" or not parsed.database:
            raise ValueError("must be a postgresql:// URL naming a database")
        return url


def checked_public_url(url: str) -> str:
    """``url`` as the base of links (no trailing slash), if it is an http(s) URL with a host,
    maybe a path, and nothing else: no credentials, query, fragment, blanks or controls."""
    if any(character.isspace() or not character.isprintable() for character in url):
        raise ValueError("must not contain blanks or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise ValueError(f"is not a URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if "@" in parts.netloc:
        raise ValueError("must not hold credentials")
    if "?" in url or "#" in url:
        raise ValueError("must have no query or fragment (a path prefix is allowed)")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def _url_host(host: str) -> str:
    """``host`` as the host of a URL: IPv6 in brackets, a wildcard address as the loopback."""
    try:
        address = ip_address(host)
    except ValueError:
        return host
    if address.is_unspecified:
        address = ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"[{address}]" if address.version == 6 else str(address)
