"""Keystone v3 for this service alone.

This service's tokens are Keystone's application credentials (the token's id and value are
the credential's id and secret). ``POST /identity/v3/auth/tokens`` exchanges one for a
short-lived Keystone token: the credential's id, issue and expiry moments, sealed with Fernet
under keys of their own (derived from ``LBAAS_SECRET_KEYS``). No table holds them: every use
opens the seal and checks the stored token again, so a revoked (or expired) credential ends
its Keystone tokens at once.

Projects are this service's project ids (a project's name is its id). Each project has one
user, of the same id and name, whose application credentials its tokens are.
"""

import hashlib
import time
from base64 import urlsafe_b64encode
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import select, union

from api_service.access import RequestContext
from api_service.db.engine import SessionFactory
from api_service.db.models import LoadBalancer, Quota, Token
from api_service.errors import Invalid, NotFound, Unauthenticated
from api_service.schemas.identity import (
    ApplicationCredentialAuth,
    Auth,
    DomainRef,
    ProjectScope,
)
from api_service.secret_keys import SecretKeys, Unsealable
from api_service.services.tokens import TokenService, unauthorized

DOMAIN_ID = "default"
DOMAIN_NAME = "Default"
SEALING_PURPOSE = "keystone token"


@dataclass(frozen=True)
class KeystoneToken:
    """A Keystone token and the stored token (application credential) it stands for."""

    value: str
    token: Token
    issued_at: datetime
    expires_at: datetime

    @property
    def audit_id(self) -> str:
        """Keystone's audit id: names the token in logs without being it."""
        return urlsafe_b64encode(hashlib.sha256(self.value.encode()).digest()[:16]).decode()[:22]


@dataclass(frozen=True)
class _Sealed:
    """What a Keystone token holds, sealed: whose credential, and when it was issued and
    ends."""

    token_id: UUID
    issued_at: int
    expires_at: int


@dataclass(frozen=True)
class IdentityService:
    """Keystone's answers for this service: credentials exchanged for tokens, catalogs,
    projects and users as the caller may see them."""

    tokens: TokenService
    sessions: SessionFactory
    keys: SecretKeys
    """Keys of Keystone tokens alone (``SecretKeys.derived(SEALING_PURPOSE)``)."""
    ttl: timedelta

    async def issue(self, auth: Auth) -> KeystoneToken:
        """A Keystone token for a valid application credential (401 otherwise), scoped to
        the credential's project."""
        credential = auth.identity.application_credential
        try:
            if credential.id is not None:
                token = await self.tokens.verify_credential(
                    credential.secret, token_id=credential.id
                )
            else:
                token = await self.tokens.verify_credential(
                    credential.secret, name=credential.name, project_id=_user_of(credential)
                )
        except Unauthenticated as refused:
            raise unauthorized(f"The application credential is refused: {refused.detail}") from None
        if auth.scope is not None and _scoped_project(auth.scope.project) != token.project_id:
            raise unauthorized(
                "An application credential is scoped to its own project only: "
                "ask for no scope, or for that one."
            )
        now = int(time.time())
        expires = now + int(self.ttl.total_seconds())
        if token.expires_at is not None:
            expires = min(expires, int(token.expires_at.timestamp()))
        value = self.keys.seal(f"{token.id.hex} {now} {expires}")
        return KeystoneToken(value, token, _moment(now), _moment(expires))

    async def verify(self, value: str) -> Token:
        """The stored token of a credential a request carries: a Keystone token this service
        issued, or one of its own tokens; 401 unless it is live."""
        sealed = self._opened(value)
        if sealed is None:
            return await self.tokens.verify(value)
        if sealed.expires_at <= time.time():
            raise unauthorized("The token has expired.")
        return await self.tokens.verify_id(sealed.token_id)

    async def validate(self, value: str, ctx: RequestContext) -> KeystoneToken:
        """The Keystone token ``value`` (X-Subject-Token), if live and of a project the
        caller sees; 404 otherwise."""
        sealed = self._opened(value)
        missing = NotFound("Token", "in X-Subject-Token")
        if sealed is None or sealed.expires_at <= time.time():
            raise missing
        try:
            token = await self.tokens.verify_id(sealed.token_id)
        except Unauthenticated:
            raise missing from None
        if not ctx.owns(token.project_id):
            raise missing
        return KeystoneToken(value, token, _moment(sealed.issued_at), _moment(sealed.expires_at))

    async def projects(self, ctx: RequestContext, name: str | None = None) -> list[str]:
        """The projects the caller sees (named ``name``): its own; every known one for an
        admin or a global observer."""
        if not ctx.reads_all:
            return [ctx.project_id] if name in (None, ctx.project_id) else []
        known = union(
            select(Token.project_id), select(Quota.project_id), select(LoadBalancer.project_id)
        ).subquery()
        query = select(known.c.project_id).order_by(known.c.project_id)
        if name is not None:
            query = query.where(known.c.project_id == name)
        async with self.sessions() as session:
            return list(await session.scalars(query))

    async def project(self, ctx: RequestContext, project_id: str) -> str:
        """A project the caller sees, or 404 (a user is its project: the same rule)."""
        if project_id not in await self.projects(ctx, project_id):
            raise NotFound("Project", project_id)
        return project_id

    def _opened(self, value: str) -> _Sealed | None:
        """What a Keystone token holds; None for anything else (one of this service's own
        tokens, or nothing valid)."""
        try:
            token_id, issued, expires = self.keys.open(value).split(" ")
            return _Sealed(UUID(hex=token_id), int(issued), int(expires))
        except (Unsealable, ValueError):
            return None


def _user_of(credential: ApplicationCredentialAuth) -> str:
    """The project whose user a credential named by its name belongs to (401 for a user of
    another domain: there is none)."""
    user = credential.user
    project = None if user is None else user.id or user.name
    if credential.name is None or user is None or project is None:
        raise Invalid(
            "auth.identity.application_credential",
            "give the credential's id, or its name and its user (id or name).",
        )
    if not _in_the_domain(user.domain):
        raise unauthorized("no such user.")
    return project


def _scoped_project(scope: ProjectScope) -> str | None:
    """The project a scope names, by id or by name (None: one of another domain)."""
    project = scope.id or scope.name
    if project is None:
        raise Invalid("auth.scope.project", "name the project by id or by name.")
    return project if _in_the_domain(scope.domain) else None


def _in_the_domain(domain: DomainRef | None) -> bool:
    """Whether ``domain`` is the one domain there is (named in any case)."""
    return domain is None or (
        domain.id in (None, DOMAIN_ID) and (domain.name or DOMAIN_NAME).lower() == DOMAIN_ID
    )


def _moment(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)
