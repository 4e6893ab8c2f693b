"""Request limits enforced before any parsing: JSON content type and a streaming body size cap.

The body is counted as it arrives, so a chunked upload or a lying ``Content-Length`` cannot get more
than ``max_body_bytes`` into memory; within the cap it is handed on unchanged. Only requests that a
route accepts are checked, so a wrong method still gets its 405 and an unknown path its 404 (neither
reads the body).
"""

from __future__ import annotations

import json

from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPES = frozenset({b"application/json"})
MAX_LENGTH_DIGITS = 19  # a Content-Length longer than this is beyond any cap; the body count catches it


def bounded_decimal(text: str | bytes, max_digits: int) -> int | None:
    """The value of ``text`` if it is 1 to ``max_digits`` ASCII digits, else None.

    Header values come from clients: the length bound keeps a run of thousands of digits from
    reaching ``int``, which refuses more than 4,300 digits with an error, not a value.
    """
    if not (0 < len(text) <= max_digits and text.isascii() and text.isdigit()):
        return None
    return int(text)


class RequestLimitsMiddleware:
    """415 unless a body-carrying request is JSON; 413 once its body exceeds ``max_body_bytes``."""

    def __init__(self, app: ASGIApp, router: Router, max_body_bytes: int) -> None:
        self.app = app
        self.router = router
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS or not self._routed(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type not in JSON_TYPES:
            await _reply(send, 415, "Content-Type must be application/json")
            return
        declared = bounded_decimal(headers.get(b"content-length", b""), MAX_LENGTH_DIGITS)
        if declared is not None and declared > self.max_body_bytes:
            await _reply(send, 413, f"request body larger than {self.max_body_bytes} bytes")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await _reply(send, 413, f"request body larger than {self.max_body_bytes} bytes")
                return
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay(bytes(body), receive), send)


    def _routed(self, scope: Scope) -> bool:
        return any(route.matches(scope)[0] == Match.FULL for route in self.router.routes)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the buffered body over once, then defers to the real one."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _reply(send: Send, status: int, detail: str) -> None:
    payload = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})
