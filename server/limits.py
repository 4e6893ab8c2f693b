"""Request limits enforced before any parsing: how many at once, how long each, what the body may be.

- ``AdmissionMiddleware``: at most ``max_concurrent_requests`` requests in flight per worker (more get
  503 with ``Retry-After`` at once, not a queue that grows without bound); each admitted request gets
  a deadline (``request_timeout_seconds``, see ``server.deadline``) and an answer by then plus a
  second's grace: its own, or 503 if its route has not started answering. The probes (health,
  readiness, metrics) are always admitted, so an orchestrator sees a busy worker as alive.
- ``RequestLimitsMiddleware``: JSON content type, a body cap counted as the body arrives (a chunked
  upload or a lying ``Content-Length`` cannot get more than ``max_body_bytes`` into memory), and the
  whole body within ``body_timeout_seconds`` (a client trickling a body gets 408). Only requests that
  a route accepts are checked, so a wrong method still gets its 405 and an unknown path its 404.
"""

from __future__ import annotations

import asyncio
import json
import time

from starlette.routing import Match, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .deadline import deadline_after

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPES = frozenset({b"application/json"})
MAX_LENGTH_DIGITS = 19  # a Content-Length longer than this is beyond any cap; the body count catches it
PROBE_PATHS = frozenset({"/v1/health", "/v1/ready", "/metrics"})
ANSWER_GRACE_SECONDS = 1.0  # past the deadline, for work that began committing just before it
BUSY_RETRY_AFTER = "1"


def bounded_decimal(text: str | bytes, max_digits: int) -> int | None:
    """The value of ``text`` if it is 1 to ``max_digits`` ASCII digits, else None.

    Header values come from clients: the length bound keeps a run of thousands of digits from
    reaching ``int``, which refuses more than 4,300 digits with an error, not a value.
    """
    if not (0 < len(text) <= max_digits and text.isascii() and text.isdigit()):
        return None
    return int(text)


class AdmissionMiddleware:
    """503 + ``Retry-After`` beyond ``max_concurrent`` requests in flight; a deadline and a timely answer for the rest.

    A request counts as in flight until its work has really ended, also when it was answered 503 at
    its deadline while a worker thread finished (that thread commits nothing after the deadline).
    """

    def __init__(self, app: ASGIApp, max_concurrent: int, timeout_seconds: float) -> None:
        self.app = app
        self.max_concurrent = max_concurrent
        self.timeout_seconds = timeout_seconds
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PROBE_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_concurrent:
            await reply(send, 503, f"this worker is serving {self.max_concurrent} requests (its limit); retry",
                        retry_after=BUSY_RETRY_AFTER)
            return
        answer = _Answer(send)
        self.in_flight += 1
        with deadline_after(self.timeout_seconds):  # the task's context (and its threads') carries it
            work = asyncio.ensure_future(self.app(scope, receive, answer.send))
        work.add_done_callback(self._finished)
        await asyncio.wait({work}, timeout=self.timeout_seconds + ANSWER_GRACE_SECONDS)
        if not work.done() and not answer.started:
            answer.abandon()
            await reply(send, 503, f"the request did not finish within {self.timeout_seconds:g} s; nothing it "
                                   "would have written after that was written; retry", retry_after=BUSY_RETRY_AFTER)
            return
        await work  # done, or already answering: its outcome (or its error) is the request's

    def _finished(self, work: asyncio.Future[None]) -> None:
        self.in_flight -= 1
        if not work.cancelled():
            work.exception()  # retrieved: an abandoned request's error was logged by the error handlers already


class _Answer:
    """The ``send`` of one request: remembers whether the response began; after ``abandon`` it sends nothing."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.started = False
        self._abandoned = False

    async def send(self, message: Message) -> None:
        if self._abandoned:
            return
        self.started = True
        await self._send(message)

    def abandon(self) -> None:
        self._abandoned = True


class RequestLimitsMiddleware:
    """415 unless a body-carrying request is JSON; 413 once its body exceeds ``max_body_bytes``; 408 once it
    has taken longer than ``body_timeout_seconds`` to arrive."""

    def __init__(self, app: ASGIApp, router: Router, max_body_bytes: int, body_timeout_seconds: float) -> None:
        self.app = app
        self.router = router
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS or not self._routed(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if content_type not in JSON_TYPES:
            await reply(send, 415, "Content-Type must be application/json")
            return
        declared = bounded_decimal(headers.get(b"content-length", b""), MAX_LENGTH_DIGITS)
        if declared is not None and declared > self.max_body_bytes:
            await reply(send, 413, f"request body larger than {self.max_body_bytes} bytes")
            return
        body = bytearray()
        arrive_by = time.monotonic() + self.body_timeout_seconds
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=max(0.0, arrive_by - time.monotonic()))
            except TimeoutError:
                await reply(send, 408, f"the request body did not arrive within {self.body_timeout_seconds:g} s")
                return
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                await reply(send, 413, f"request body larger than {self.max_body_bytes} bytes")
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


async def reply(send: Send, status: int, detail: str, retry_after: str | None = None) -> None:
    """Answer ``{"detail": detail}`` with ``status`` and close the connection (its body may be unread)."""
    payload = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()),
               (b"connection", b"close")]
    if retry_after is not None:
        headers.append((b"retry-after", retry_after.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
