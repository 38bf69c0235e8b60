"""Tokens: random values shown once and stored as SHA-256; verified on every request."""

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID, uuid4

from sqlalchemy import ColumnElement, func, select, update

from api_service.db.engine import SessionFactory
from api_service.db.models import Token
from api_service.db.notifications import notify_revoked
from api_service.errors import Invalid, NotFound, Unauthenticated
from api_service.settings import MIN_TOKEN_LENGTH

TOKEN_BYTES = 32
"""256 bits of randomness."""
_LAST_USED_GRANULARITY = timedelta(minutes=1)


class Role(StrEnum):
    OBSERVER = "observer"
    MEMBER = "member"
    GLOBAL_OBSERVER = "global_observer"
    ADMIN = "admin"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def unauthorized(detail: str) -> Unauthenticated:
    return Unauthenticated(detail)


@dataclass(frozen=True)
class IssuedToken:
    token: Token
    value: str
    """The secret: shown to the caller once, never stored."""


@dataclass
class VerifiedTokens:
    """Tokens found live, kept ``ttl`` seconds so that most requests need no query for theirs.

    Only while revocations are followed (:meth:`following`, from the database feed): a
    revocation drops its token at once in the replica that made it and, by a notification
    at its commit, in every other one; a lost feed empties and disables the cache until it
    listens again. A token read before a revocation arrived is not kept after it
    (:meth:`epoch`). An entry never outlives its token's expiry. Keys are digests or ids,
    never a secret.
    """

    ttl: float
    size: int = 10_000
    _following: bool = False
    _entries: dict[str, tuple[Token, float]] = field(default_factory=dict)
    """key -> (token, monotonic deadline)"""
    _revocations: int = 0
    """Revocations (and feed changes) seen so far."""

    def epoch(self) -> int:
        """Now, to give :meth:`put` for a token about to be read."""
        return self._revocations

    def get(self, key: str) -> Token | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        token, deadline = entry
        if time.monotonic() >= deadline:
            del self._entries[key]
            return None
        return token

    def put(self, key: str, token: Token, now: datetime, epoch: int) -> None:
        """Keep ``token``, found live at the database's ``now`` by a read begun at ``epoch``
        (not if a revocation has arrived since: it may be this token's)."""
        if not self._following or self.ttl <= 0 or epoch != self._revocations:
            return
        keep = self.ttl
        if token.expires_at is not None:
            keep = min(keep, (token.expires_at - now).total_seconds())
        if len(self._entries) >= self.size:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (token, time.monotonic() + keep)

    def revoked(self, token_id: str) -> None:
        self._revocations += 1
        for key in [k for k, (token, _) in self._entries.items() if str(token.id) == token_id]:
            del self._entries[key]

    def following(self, live: bool) -> None:
        """Whether revocations reach :meth:`revoked` from now on (False: some may be missed)."""
        self._revocations += 1
        self._entries.clear()
        self._following = live


@dataclass(frozen=True)
class TokenService:
    sessions: SessionFactory
    verified: VerifiedTokens

    async def issue(
        self,
        *,
        name: str,
        project_id: str,
        role: Role,
        expires_in: timedelta | None = None,
        value: str | None = None,
    ) -> IssuedToken:
        """A new token; ``value`` imports a given secret (the bootstrap admin token)."""
        secret = value or secrets.token_urlsafe(TOKEN_BYTES)
        if len(secret) < MIN_TOKEN_LENGTH:
            raise Invalid("token", f"A token must be at least {MIN_TOKEN_LENGTH} characters.")
        async with self.sessions.begin() as session:
            existing = await session.scalar(select(Token).where(Token.token_hash == digest(secret)))
            if existing is not None:
                return IssuedToken(existing, secret)
            token = Token(
                id=uuid4(),
                name=name,
                project_id=project_id,
                role=role.value,
                token_hash=digest(secret),
                expires_at=(datetime.now(UTC) + expires_in) if expires_in else None,
            )
            session.add(token)
        return IssuedToken(token, secret)

    async def list(self) -> list[Token]:
        async with self.sessions() as session:
            return list(await session.scalars(select(Token).order_by(Token.created_at, Token.id)))

    async def revoke(self, token_id: UUID) -> Token:
        async with self.sessions.begin() as session:
            token = await session.get(Token, token_id, with_for_update=True)
            if token is None:
                raise NotFound("Token", token_id)
            if token.revoked_at is None:
                token.revoked_at = datetime.now(UTC)
                await notify_revoked(session, token.id)
        self.verified.revoked(str(token.id))
        return token

    async def verify(self, secret: str) -> Token:
        """The live token with this value, or 401; records when it was last used."""
        key = digest(secret)
        return self.verified.get(key) or await self._live(Token.token_hash == key, key=key)

    async def verify_id(self, token_id: UUID) -> Token:
        """The live token of this id (that a sealed Keystone token names), or 401."""
        key = f"id:{token_id}"
        return self.verified.get(key) or await self._live(Token.id == token_id, key=key)

    async def verify_credential(
        self,
        secret: str,
        *,
        token_id: UUID | None = None,
        name: str | None = None,
        project_id: str | None = None,
    ) -> Token:
        """The live token with this value and this id, or this name in this project: a
        Keystone application credential (by id, or by name and user); 401 otherwise."""
        if token_id is not None:
            return await self._live(Token.token_hash == digest(secret), Token.id == token_id)
        return await self._live(
            Token.token_hash == digest(secret), Token.name == name, Token.project_id == project_id
        )

    async def _live(self, *criteria: ColumnElement[bool], key: str | None = None) -> Token:
        epoch = self.verified.epoch()
        async with self.sessions.begin() as session:
            found = (await session.execute(select(Token, func.now()).where(*criteria))).first()
            if found is None:
                raise unauthorized("The token is not valid.")
            token, now = found
            if token.revoked_at is not None:
                raise unauthorized("The token has been revoked.")
            if token.expires_at is not None and token.expires_at <= now:
                raise unauthorized("The token has expired.")
            if token.last_used_at is None or token.last_used_at < now - _LAST_USED_GRANULARITY:
                await session.execute(
                    update(Token).where(Token.id == token.id).values(last_used_at=now)
                )
        if key is not None:
            self.verified.put(key, token, now, epoch)
        return token
