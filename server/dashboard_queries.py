"""Read-only questions the operator's dashboard asks the state DB: activity, feedback, open windows.

Each call opens its own read-only connection (``mode=ro``) to the SQLite file the store writes, so the
dashboard never takes the store's lock or a write lock, and a WAL reader never blocks a writer. Times
are UTC seconds since the epoch, as in the store.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path

HOUR = 3600.0
CLOSING_SOON_ROWS = 10


@dataclass(frozen=True)
class HourlyCount:
    """Decisions on one channel in one hour bucket (``bucket`` 0 is the oldest hour of the window)."""

    bucket: int
    channel: str
    decisions: int


@dataclass(frozen=True)
class FeedbackCount:
    """Events of one type received in the window, by the status each was given."""

    type: str
    status: str
    events: int


@dataclass(frozen=True)
class OpenWindow:
    """An open decision: what was sent to which segment, and when its attribution window closes."""

    channel: str
    region: str
    industry: str
    campaign_type: str
    created_at: float
    window_closes_at: float


@dataclass(frozen=True)
class Activity:
    """What the engine did in the last ``hours`` hours before ``until``, and what is still open now."""

    until: float
    hours: int
    hourly: list[HourlyCount]
    explored: int
    feedback: list[FeedbackCount]
    open_decisions: int
    closing_within_day: int
    closing_soon: list[OpenWindow]

    @property
    def decisions(self) -> int:
        return sum(h.decisions for h in self.hourly)

    def channel_mix(self) -> dict[str, int]:
        """Decisions per channel over the window, largest first."""
        mix: dict[str, int] = {}
        for h in self.hourly:
            mix[h.channel] = mix.get(h.channel, 0) + h.decisions
        return dict(sorted(mix.items(), key=lambda item: -item[1]))

    def feedback_table(self) -> tuple[list[str], list[tuple[str, list[int]]]]:
        """The statuses seen (columns) and, per event type, how many events got each."""
        statuses = sorted({f.status for f in self.feedback})
        counts = {(f.type, f.status): f.events for f in self.feedback}
        types = sorted({f.type for f in self.feedback})
        return statuses, [(t, [counts.get((t, s), 0) for s in statuses]) for t in types]


@contextmanager
def read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to the state DB at ``path``, closed on exit."""
    with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as conn:
        yield conn


def activity(path: Path, until: float, hours: int) -> Activity:
    """Decisions per hour and channel, explorations and feedback in ``(until - hours, until]``; open windows."""
    since = until - hours * HOUR
    with read_only(path) as conn:
        hourly = [HourlyCount(int(b), c, n) for b, c, n in conn.execute(
            "SELECT CAST((created_at - ?) / ? AS INTEGER) AS bucket, channel, COUNT(*) FROM decisions "
            "WHERE created_at > ? AND created_at <= ? GROUP BY bucket, channel ORDER BY bucket, channel",
            (since, HOUR, since, until))]
        (explored,) = conn.execute("SELECT COALESCE(SUM(explored), 0) FROM decisions "
                                   "WHERE created_at > ? AND created_at <= ?", (since, until)).fetchone()
        feedback = [FeedbackCount(*row) for row in conn.execute(
            "SELECT type, status, COUNT(*) FROM events WHERE received_at > ? AND received_at <= ? "
            "GROUP BY type, status ORDER BY type, status", (since, until))]
        n_open, within_day = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(window_closes_at <= ?), 0) FROM decisions WHERE closed = 0",
            (until + 24 * HOUR,)).fetchone()
        soon = [OpenWindow(*row) for row in conn.execute(
            "SELECT channel, region, industry, campaign_type, created_at, window_closes_at FROM decisions "
            "WHERE closed = 0 ORDER BY window_closes_at LIMIT ?", (CLOSING_SOON_ROWS,))]
    return Activity(until, hours, hourly, int(explored), feedback, int(n_open), int(within_day), soon)


def first_served(path: Path, model_version: str) -> float | None:
    """When the first decision logged with ``model_version`` was made (None before its first one)."""
    with read_only(path) as conn:
        (first,) = conn.execute("SELECT MIN(created_at) FROM decisions WHERE model_version = ?",
                                (model_version,)).fetchone()
    return None if first is None else float(first)
