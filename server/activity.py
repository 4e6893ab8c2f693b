"""What the operator's dashboard asks a store about its recent work: activity, feedback, open windows.

Every :class:`~sendwise.server.store.Store` answers with these values (``Store.activity``), so the
dashboard reads SQLite and Redis alike. Times are UTC seconds since the epoch, as in the store.
"""

from __future__ import annotations

from dataclasses import dataclass

HOUR = 3600.0
DAY = 24 * HOUR
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
    """What the engine did in the last ``hours`` hours before ``until``, and what is still open now.

    ``hourly`` is sorted by (bucket, channel), ``feedback`` by (type, status), ``closing_soon`` (at most
    ``CLOSING_SOON_ROWS``) by (window close time, decision id).
    """

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


def hour_bucket(at: float, since: float) -> int:
    """The hour bucket of time ``at`` in a window that starts (exclusive) at ``since``."""
    return int((at - since) / HOUR)
