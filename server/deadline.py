"""Each request's deadline: every wait it makes is bounded by it, and nothing is written after it passes.

``AdmissionMiddleware`` opens the deadline when a request is admitted (``request_timeout_seconds``);
the context variable follows the request into the worker threads that run its route. The stores
wait for locks at most until the deadline (``wait_budget``), and the service checks it right before
committing (``check_deadline``), so a request that could not be served in time gets a 503 with
``Retry-After`` and has changed nothing: no decision a caller never received is logged as sent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_deadline: ContextVar[float | None] = ContextVar("sendwise_request_deadline", default=None)


class DeadlineExceededError(RuntimeError):
    """The request's deadline passed before its work could be committed; nothing was written."""


@contextmanager
def deadline_after(seconds: float) -> Iterator[float]:
    """Give the work inside a deadline ``seconds`` from now (monotonic clock); yields the deadline."""
    deadline = time.monotonic() + seconds
    token = _deadline.set(deadline)
    try:
        yield deadline
    finally:
        _deadline.reset(token)


def wait_budget(limit: float) -> float:
    """How long a wait may last: ``limit`` seconds, or less when the request's deadline is nearer (never < 0)."""
    deadline = _deadline.get()
    if deadline is None:
        return limit
    return max(0.0, min(limit, deadline - time.monotonic()))


def check_deadline(work: str) -> None:
    """Raise :class:`DeadlineExceededError` if the request's deadline has passed, before ``work`` begins."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceededError(f"the request took longer than its deadline before {work}; nothing was "
                                    "written; retry")
