"""Request bodies: at most 1 MiB (413) and JSON nested at most 32 deep (400), checked early.

The body is read once here, within the limit, and handed on; nothing larger is
ever held in memory, and no parser recurses on hostile nesting.
"""

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api_service.problems import PROBLEM_JSON, Problem

MAX_BODY = 1024 * 1024
MAX_DEPTH = 32


class BodyLimits:
    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY, max_depth: int = MAX_DEPTH) -> None:
        self.app = app
        self.max_body = max_body
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            if len(body) > self.max_body:
                await _refuse(send, 413, f"The body is larger than {self.max_body} bytes.")
                return
            if not message.get("more_body"):
                break
        if nesting_depth(bytes(body)) > self.max_depth:
            await _refuse(send, 400, f"The JSON body is nested deeper than {self.max_depth}.")
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


async def _refuse(send: Send, status: int, detail: str) -> None:
    title = "Content Too Large" if status == 413 else "Invalid Request"
    body = json.dumps(
        Problem(title=title, status=status, detail=detail).model_dump(exclude_none=True)
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_JSON.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
