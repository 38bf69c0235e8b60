"""The cache of verified tokens: only while revocations are followed, never past a token's
expiry nor its own time, bounded in size."""

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from api_service.db.models import Token
from api_service.services.tokens import VerifiedTokens

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def _token(expires_at: datetime | None = None) -> Token:
    return Token(id=uuid.uuid4(), name="t", project_id="p", role="member", expires_at=expires_at)


def test_nothing_is_kept_unless_revocations_are_followed() -> None:
    cache = VerifiedTokens(ttl=60)
    cache.put("k", _token(), NOW, cache.epoch())
    assert cache.get("k") is None
    cache.following(True)
    token = _token()
    cache.put("k", token, NOW, cache.epoch())
    assert cache.get("k") is token
    cache.following(False)
    assert cache.get("k") is None


def test_a_revocation_drops_every_key_of_its_token() -> None:
    cache = VerifiedTokens(ttl=60)
    cache.following(True)
    token, other = _token(), _token()
    cache.put("digest", token, NOW, cache.epoch())
    cache.put(f"id:{token.id}", token, NOW, cache.epoch())
    cache.put("other", other, NOW, cache.epoch())
    cache.revoked(str(token.id))
    assert cache.get("digest") is None and cache.get(f"id:{token.id}") is None
    assert cache.get("other") is other


def test_an_entry_ends_with_its_token(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [1000.0]
    monkeypatch.setattr("api_service.services.tokens.time.monotonic", lambda: clock[0])
    cache = VerifiedTokens(ttl=60)
    cache.following(True)
    cache.put("soon", _token(expires_at=NOW + timedelta(seconds=5)), NOW, cache.epoch())
    cache.put("later", _token(), NOW, cache.epoch())
    clock[0] += 5
    assert cache.get("soon") is None
    assert cache.get("later") is not None
    clock[0] += 55
    assert cache.get("later") is None


def test_the_cache_is_bounded_and_can_be_off() -> None:
    cache = VerifiedTokens(ttl=60, size=2)
    cache.following(True)
    for key in ("a", "b", "c"):
        cache.put(key, _token(), NOW, cache.epoch())
    assert cache.get("a") is None and cache.get("b") and cache.get("c")
    off = VerifiedTokens(ttl=0)
    off.following(True)
    off.put("a", _token(), NOW, off.epoch())
    assert off.get("a") is None


def test_a_token_read_before_a_revocation_arrived_is_not_kept() -> None:
    cache = VerifiedTokens(ttl=60)
    cache.following(True)
    token = _token()
    before = cache.epoch()
    cache.revoked(str(token.id))  # arrives while the token is being read
    cache.put("k", token, NOW, before)
    assert cache.get("k") is None
    cache.put("k", token, NOW, cache.epoch())
    assert cache.get("k") is token
