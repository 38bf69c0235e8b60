"""``Idempotency-Key`` on POST: the same key and body within 24 h get the first answer again.

Keys belong to the token that sent them, checked before (by
:class:`~api_service.context.Authentication`): only that token gets the answer
again, and a request without a valid token gets none. A key is reserved (a row
without a status) before the request runs, so two concurrent requests with one
key cannot both create; the answer is stored when it is a success, and the
reservation dropped otherwise so that the client may retry. The same key with
another body (or path) is refused with 422.

The answer of a route that holds a secret (issuing a token) is never stored,
whatever the spelling of its path: which route served the request decides, once it
has. Keys older than 24 h are purged by :func:`purge_expired_keys`.
"""

import hashlib
import json
import re
from collections.abc import Callable, Collection
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.dialects.postgresql import insert
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_service.context import caller_of
from api_service.db.engine import SessionFactory
from api_service.db.models import IdempotencyKey
from api_service.problems import PROBLEM_JSON, Problem

HEADER = b"idempotency-key"
TTL = timedelta(hours=24)
_IN_PROGRESS_TTL = timedelta(minutes=5)
KEY_PATTERN = r"[\x21-\x7e]{1,255}"
"""An Idempotency-Key: 1-255 visible ASCII characters."""
_KEY = re.compile(rf"\A{KEY_PATTERN}\Z")
_REPLAYED_HEADERS = frozenset({"content-type", "location", "retry-after", "x-operation-id", "etag"})
PURGE_BATCH = 1000
"""Expired keys deleted in one transaction."""

Sessions = Callable[[Scope], SessionFactory]


class IdempotencyMiddleware:
    def __init__(
        self, app: ASGIApp, sessions: Sessions, secret_answers: Collection[Callable[..., Any]]
    ) -> None:
        """``secret_answers``: the endpoints whose answers hold a secret, never stored."""
        self.app = app
        self.sessions = sessions
        self.secret_answers = secret_answers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _key_header(scope)
        caller = caller_of(scope)
        if scope["type"] != "http" or scope["method"] != "POST" or key is None or caller is None:
            await self.app(scope, receive, send)
            return
        if not _KEY.fullmatch(key):
            await _send_problem(
                send, 400, "Idempotency-Key must be 1-255 visible ASCII characters."
            )
            return
        body = await _read_body(receive)
        request_hash = hashlib.sha256(scope["path"].encode() + b"\n" + body).hexdigest()
        owner = caller.token_digest
        sessions = self.sessions(scope)

        stored = await _reserve(sessions, owner, key, request_hash)
        if stored is not None:
            await _answer_from(stored, request_hash, send)
            return
        captured = _Captured()
        try:
            await self.app(scope, _replay(body), captured.send)
        finally:
            # Routing has put the route that served the request in the scope.
            served_by = getattr(scope.get("route"), "endpoint", None)
            keep = served_by not in self.secret_answers and 200 <= captured.status < 300
            await _finish(sessions, owner, key, captured if keep else None)
        await captured.release(send)


def _key_header(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == HEADER:
            return str(value.decode("latin-1"))
    return None


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


class _Captured:
    """Holds the response back until it is stored: a retry that follows it must find it."""

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self._messages: list[Message] = []

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {
                k.decode("latin-1"): v.decode("latin-1") for k, v in message.get("headers", [])
            }
        elif message["type"] == "http.response.body":
            self.body.extend(message.get("body", b""))
        self._messages.append(message)

    async def release(self, send: Send) -> None:
        for message in self._messages:
            await send(message)


async def _reserve(
    sessions: SessionFactory, owner: str, key: str, request_hash: str
) -> IdempotencyKey | None:
    """Reserve the key; or return its row when it is already taken (and still fresh)."""
    async with sessions.begin() as session:
        await session.execute(
            delete(IdempotencyKey).where(
                IdempotencyKey.owner == owner,
                IdempotencyKey.key == key,
                (IdempotencyKey.created_at < func.now() - TTL)
                | (
                    IdempotencyKey.status_code.is_(None)
                    & (IdempotencyKey.created_at < func.now() - _IN_PROGRESS_TTL)
                ),
            )
        )
        inserted = await session.execute(
            insert(IdempotencyKey)
            .values(owner=owner, key=key, request_hash=request_hash, headers={}, body="")
            .on_conflict_do_nothing()
            .returning(IdempotencyKey.key)
        )
        if inserted.first() is not None:
            return None
        return await session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
        )


async def _answer_from(stored: IdempotencyKey, request_hash: str, send: Send) -> None:
    if stored.request_hash != request_hash:
        await _send_problem(
            send, 422, "This Idempotency-Key was used with another request body or path."
        )
    elif stored.status_code is None:
        await _send_problem(send, 409, "A request with this Idempotency-Key is still running.")
    else:
        headers = {**stored.headers, "idempotent-replayed": "true"}
        await _send(send, stored.status_code, headers, stored.body.encode())


async def _finish(sessions: SessionFactory, owner: str, key: str, answer: _Captured | None) -> None:
    """Store the answer of the key's request; with none, drop the reservation."""
    where = (IdempotencyKey.owner == owner, IdempotencyKey.key == key)
    async with sessions.begin() as session:
        if answer is not None:
            row = await session.scalar(select(IdempotencyKey).where(*where))
            if row is not None:
                row.status_code = answer.status
                row.headers = {k: v for k, v in answer.headers.items() if k in _REPLAYED_HEADERS}
                row.body = answer.body.decode()
        else:
            await session.execute(delete(IdempotencyKey).where(*where))


async def purge_expired_keys(sessions: SessionFactory, batch: int = PURGE_BATCH) -> int:
    """Delete every key older than 24 h, ``batch`` a transaction; return how many.

    Rows another replica's purge holds are skipped (it deletes them).
    """
    expired = (
        select(IdempotencyKey.owner, IdempotencyKey.key)
        .where(IdempotencyKey.created_at < func.now() - TTL)
        .limit(batch)
        .with_for_update(skip_locked=True)
    )
    purged = 0
    while True:
        async with sessions.begin() as session:
            result = await session.execute(
                delete(IdempotencyKey)
                .where(tuple_(IdempotencyKey.owner, IdempotencyKey.key).in_(expired))
                .returning(IdempotencyKey.key)
            )
            deleted = len(result.all())
        purged += deleted
        if deleted < batch:
            return purged


async def _send_problem(send: Send, status: int, detail: str) -> None:
    title = {400: "Invalid Request", 409: "Conflict", 422: "Idempotency-Key Reused"}[status]
    body = Problem(title=title, status=status, detail=detail).model_dump(exclude_none=True)
    await _send(send, status, {"content-type": PROBLEM_JSON}, json.dumps(body).encode())


async def _send(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw: list[tuple[bytes, bytes]] = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
