"""What a request may be, checked early: a path without control characters (404), and a
body of at most 1 MiB (413) nested at most 32 deep (400).

Starlette's path patterns end in ``$``, which also matches before a trailing newline,
so without the path check ``/v2/lbaas/tokens%0A`` would be served as
``/v2/lbaas/tokens``: no path of the API holds a control character.

A body is read once, within the limit, and handed on; nothing larger is ever held
in memory, and no parser recurses on hostile nesting. Only requests to the
authenticated paths are read, after their token was checked
(:class:`~api_service.context.Authentication` runs first): the open paths take no
body, so the body of a request without a valid token is never read, but for a
credential exchange (``POST /identity/v3/auth/tokens``), whose body is the credential.
"""

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_service.context import AUTHENTICATED_PATHS
from api_service.problems import Problem, problem_response

MAX_BODY = 1024 * 1024
MAX_DEPTH = 32
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Unicode's control characters (category Cc): C0, DEL and C1."""


class PathLimits:
    """Refuses (404) a path that holds a control character once percent-decoded."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        control = _CONTROL_CHARACTER.search(scope["path"]) if scope["type"] == "http" else None
        if control is None:
            await self.app(scope, receive, send)
            return
        detail = (
            f"No path holds a control character, and this one has U+{ord(control[0]):04X} "
            f"at position {control.start()}."
        )
        await problem_response(Problem(title="Not Found", status=404, detail=detail))(
            scope, receive, send
        )


class BodyLimits:
    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY, max_depth: int = MAX_DEPTH) -> None:
        self.app = app
        self.max_body = max_body
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in ("GET", "HEAD", "OPTIONS")
            or not scope["path"].startswith(AUTHENTICATED_PATHS)
        ):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            if len(body) > self.max_body:
                detail = f"The body is larger than {self.max_body} bytes."
                await _refuse(scope, receive, send, 413, "Content Too Large", detail)
                return
            if not message.get("more_body"):
                break
        if nesting_depth(bytes(body)) > self.max_depth:
            detail = f"The JSON body is nested deeper than {self.max_depth}."
            await _refuse(scope, receive, send, 400, "Invalid Request", detail)
            return
        await self.app(scope, _replay(bytes(body)), send)


def nesting_depth(body: bytes) -> int:
    """The deepest nesting of ``[`` and ``{`` outside strings, without parsing."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):  # ] }
            depth -= 1
    return deepest


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, title: str, detail: str
) -> None:
    refusal = problem_response(Problem(title=title, status=status, detail=detail))
    await refusal(scope, receive, send)
