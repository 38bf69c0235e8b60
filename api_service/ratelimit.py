"""Token buckets of this API process: requests per token, failed authentications per
client address.

Each replica limits on its own, so a client spread over N replicas may reach
N times the rate; the limits protect each process from one noisy token or address.
"""

import ipaddress
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from uuid import UUID

from api_service.problems import ProblemError

_MAX_TRACKED = 100_000
_IPV6_CLIENT_PREFIX = 64
"""An IPv6 client is its /64: one host commonly holds all of it."""

Key = TypeVar("Key", bound=Hashable)


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class TokenBuckets(Generic[Key]):
    """A bucket per key, holding at most ``burst`` and refilled by ``rate`` a second."""

    rate: float
    burst: float
    _buckets: dict[Key, _Bucket] = field(default_factory=dict)

    def wait(self, key: Key) -> float:
        """Seconds until the key's bucket holds one again (0 when it does now)."""
        bucket = self._buckets.get(key)
        tokens = self.burst if bucket is None else self._refill(bucket)
        return 0.0 if tokens >= 1 else (1 - tokens) / self.rate

    def take(self, key: Key) -> None:
        """Take one from the key's bucket; taken by concurrent requests, it may go below 0."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= _MAX_TRACKED:
                self._buckets.clear()
            bucket = self._buckets[key] = _Bucket(self.burst, time.monotonic())
        bucket.tokens = self._refill(bucket) - 1

    def _refill(self, bucket: _Bucket) -> float:
        now = time.monotonic()
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        return bucket.tokens


def _too_many(detail: str, wait: float) -> ProblemError:
    return ProblemError(
        429,
        "Too Many Requests",
        f"{detail}; retry in {wait:.1f} s.",
        headers={"Retry-After": str(max(1, round(wait + 0.5)))},
    )


@dataclass
class RateLimits(TokenBuckets[UUID]):
    """Requests per token."""

    def charge(self, token_id: UUID) -> None:
        """Take one request from the token's bucket, or refuse with 429 and Retry-After."""
        wait = self.wait(token_id)
        if wait > 0:
            raise _too_many(
                f"This token is limited to {self.rate:g} requests per second "
                f"(bursts of {self.burst:g})",
                wait,
            )
        self.take(token_id)


@dataclass
class FailedAuthentications(TokenBuckets[str]):
    """Failed authentications per client address (an IPv6 client by its /64).

    Only failures take from a bucket; an address whose bucket is empty is refused
    before its token costs a database query, whichever token it sends.
    """

    def check(self, address: str | None) -> None:
        """Refuse with 429 and Retry-After while ``address`` has no failure left."""
        wait = self.wait(client_of(address))
        if wait > 0:
            raise _too_many(
                f"Too many failed authentications from this address: {self.rate:g} a second "
                f"are allowed (bursts of {self.burst:g})",
                wait,
            )

    def record(self, address: str | None) -> None:
        """Count one failed authentication of ``address``."""
        self.take(client_of(address))


def client_of(address: str | None) -> str:
    """The client an address stands for: an IPv4 address itself, an IPv6 one by its /64
    (an IPv4-mapped one as the IPv4 address); anything else (no address) as it is."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return address or ""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, _IPV6_CLIENT_PREFIX), strict=False))
    return str(ip)
