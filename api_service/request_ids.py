"""Every request has an id: the client's ``X-Request-Id`` when it is a sane one, else a new one.

It is echoed as ``X-Request-Id`` and as ``x-openstack-request-id`` (which
OpenStack clients print), is in every log line written while the request is
handled (``shared.logging.REQUEST_ID``), and travels with the command to the
agent.
"""

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.logging import REQUEST_ID

_SANE = re.compile(r"\A[A-Za-z0-9._:-]{1,128}\Z")


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers", ())).get(b"x-request-id", b"").decode("latin-1")
        request_id = given if _SANE.fullmatch(given) else f"req-{uuid.uuid4()}"
        echoed = request_id.encode()

        async def answer(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in (b"x-request-id", b"x-openstack-request-id")
                ]
                headers += [(b"x-request-id", echoed), (b"x-openstack-request-id", echoed)]
                message = {**message, "headers": headers}
            await send(message)

        token = REQUEST_ID.set(request_id)
        try:
            await self.app(scope, receive, answer)
        finally:
            REQUEST_ID.reset(token)
