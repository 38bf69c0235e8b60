"""Per-token request rate limit: a token bucket per token, in this API process.

Each replica limits on its own, so a client spread over N replicas may reach
N times the rate; the limit protects each process from one noisy token.
"""

import time
from dataclasses import dataclass, field
from uuid import UUID

from api_service.problems import ProblemError

_MAX_TRACKED = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class RateLimits:
    rate: float
    """Requests per second each token may sustain."""
    burst: float
    _buckets: dict[UUID, _Bucket] = field(default_factory=dict)

    def charge(self, token_id: UUID) -> None:
        """Take one request from the token's bucket, or refuse with 429 and Retry-After."""
        now = time.monotonic()
        bucket = self._buckets.get(token_id)
        if bucket is None:
            if len(self._buckets) >= _MAX_TRACKED:
                self._buckets.clear()
            bucket = self._buckets[token_id] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) / self.rate
            raise ProblemError(
                429,
                "Too Many Requests",
                f"This token is limited to {self.rate:g} requests per second "
                f"(bursts of {self.burst:g}); retry in {wait:.1f} s.",
                headers={"Retry-After": str(max(1, round(wait + 0.5)))},
            )
        bucket.tokens -= 1
