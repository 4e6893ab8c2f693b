"""Group commit: durable writes of concurrent requests share one commit, and each answers only after it.

A durable commit costs a sync of the disk, whatever it holds. Requests that arrive while one commit
is under way queue up; the first of them to find no commit running leads the next one, handing the
whole queue to the store's group commit (on SQLite one transaction, each request's work in a
savepoint of its own), and every request of the group returns, or raises its own error, only once
that commit is done. Nothing is acknowledged before it is on disk, and a request alone pays no wait:
it leads at once. This is the leader/follower scheme of database write-ahead logs.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

from .deadline import wait_budget

T = TypeVar("T")
Work = Callable[[Any], Any]  # a unit of work: called with the store's transaction


class _Unit(Generic[T]):
    """One request's work, run in the request's context (its deadline), and what came of it."""

    def __init__(self, work: Callable[[Any], T]) -> None:
        self.work = work
        self.context = contextvars.copy_context()
        self.done = False
        self.outcome: Any = None

    def run(self, tx: Any) -> T:
        return self.context.run(self.work, tx)

    def result(self) -> T:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class GroupCommit:
    """Runs durable units of work, sharing commits among the requests that overlap.

    ``commit_group(works)`` commits the works as one durable transaction and returns each one's
    result or the exception that undid it. A unit queued longer than ``patience_seconds`` (or its
    request's deadline) without being taken into a commit is withdrawn with ``busy_error``.
    """

    def __init__(self, commit_group: Callable[[Sequence[Work]], list[Any]], patience_seconds: float,
                 busy_error: type[Exception]) -> None:
        self.commit_group = commit_group
        self.patience_seconds = patience_seconds
        self.busy_error = busy_error
        self._cond = threading.Condition()
        self._queue: list[_Unit[Any]] = []
        self._leading = False
        self.commits = 0  # how many shared commits ran, and how many units they held (for the benchmark)
        self.units = 0

    def run(self, work: Callable[[Any], T]) -> T:
        """Run ``work(tx)`` in a durable unit of its own; returns its result once the commit holding it is done.

        A wait for another request's commit counts against the request's deadline: past it (or the
        patience) a unit not yet taken into a commit is withdrawn with a retryable error.
        """
        unit = _Unit(work)
        with self._cond:
            self._queue.append(unit)
            while self._leading and not unit.done:
                queued = unit in self._queue  # once a leader took it, its commit ends the wait
                if not self._cond.wait(timeout=wait_budget(self.patience_seconds) if queued else None) \
                        and unit in self._queue:
                    self._queue.remove(unit)
                    raise self.busy_error("state DB busy: other requests' commits held it past the busy "
                                          "timeout or the request's deadline; retry")
            if unit.done:
                return unit.result()
            self._leading = True
            group, self._queue = self._queue, []
        try:
            outcomes = self.commit_group([u.run for u in group])
        except BaseException as exc:  # noqa: BLE001 - e.g. interrupted: every unit of the group learns it
            outcomes = [exc] * len(group)
        with self._cond:
            for member, outcome in zip(group, outcomes, strict=True):
                member.outcome, member.done = outcome, True
            self.commits += 1
            self.units += len(group)
            self._leading = False
            self._cond.notify_all()
        return unit.result()
