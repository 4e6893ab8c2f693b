"""Local send hours → UTC send instants, correct across daylight-saving transitions.

Arms carry a *local* hour (``arm = channel * 24 + hour``), so posterior buckets are keyed by the
wall-clock hour the customer sees, never by a UTC offset: 09:00 in New York is the same bucket in
January (14:00 UTC) and in July (13:00 UTC). This module turns such an hour into the UTC instant at
which to send, by three rules:

- **Normal hour**: the instant at which the customer's clock shows ``hour:00``.
- **Nonexistent hour** (spring forward: ``hour:00`` falls in the gap): the first instant after the
  gap, i.e. the transition itself. New York 02:00 on a spring-forward day → 03:00 EDT (07:00 UTC);
  Lord Howe 02:00 → 02:30 (+11:00); Chatham 03:00 → 03:45 (+13:45). The message keeps its bucket
  (the hour asked for) even though the clock shows a later time when it is sent.
- **Ambiguous hour** (fall back: ``hour:00`` occurs twice): sent once, at the first occurrence
  (``fold=0``); the repeat is never a candidate, so a caller asking again after the first occurrence
  gets the next day's hour.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from .catalog import N_HOURS

# Local dates searched around the earliest allowed instant: one before it (its hour may have been
# shifted past the start by a gap) up to two after (a whole skipped day, as in Pacific/Apia 2011).
_DAY_OFFSETS = (-1, 0, 1, 2)


def next_send_at(local_hour: int, tz: ZoneInfo | str, now: datetime,
                 not_before: datetime | None = None, deadline: datetime | None = None) -> datetime | None:
    """Earliest UTC instant ``t`` for ``local_hour`` in ``tz`` with ``t > now`` and ``not_before <= t <= deadline``.

    Parameters
    ----------
    local_hour : int in [0, 23], the wall-clock hour in the customer's zone.
    tz : IANA zone name or ``ZoneInfo``.
    now, not_before, deadline : timezone-aware datetimes; ``not_before`` and ``deadline`` are optional
        inclusive bounds of the send window.

    Returns
    -------
    datetime in UTC, or None when no occurrence of the hour falls inside the window. Nonexistent and
    ambiguous hours follow the module's rules.

    Examples
    --------
    >>> now = datetime(2024, 3, 10, 5, 0, tzinfo=UTC)          # 00:00 EST, the spring-forward day
    >>> next_send_at(2, "America/New_York", now).isoformat()    # 02:00 does not exist → 03:00 EDT
    '2024-03-10T07:00:00+00:00'
    >>> next_send_at(9, "America/New_York", now).isoformat()
    '2024-03-10T13:00:00+00:00'
    """
    if not (isinstance(local_hour, int) and 0 <= local_hour < N_HOURS):
        raise ValueError(f"`local_hour` must be an int in [0, 23]; got {local_hour!r}")
    for name, value in (("now", now), ("not_before", not_before), ("deadline", deadline)):
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"`{name}` must be timezone-aware; got naive {value.isoformat()}")
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    start = now if not_before is None else max(now, not_before)
    start_day = start.astimezone(zone).date()
    for day_offset in _DAY_OFFSETS:
        candidate = _send_instant(start_day + timedelta(days=day_offset), local_hour, zone)
        if candidate > now and (not_before is None or candidate >= not_before):
            return candidate if deadline is None or candidate <= deadline else None
    raise AssertionError(f"no occurrence of {local_hour}:00 in {zone.key} near {start.isoformat()}")


@lru_cache(maxsize=1024)
def send_instants(tz: ZoneInfo | str, now: datetime, not_before: datetime | None = None,
                  deadline: datetime | None = None) -> tuple[datetime | None, ...]:
    """``next_send_at`` for each local hour 0–23; None marks an hour outside ``[not_before, deadline]``.

    This is the send-window part of an arm mask (``[t is not None for t in send_instants(...)]``) and
    the instant to report for the hour chosen, from one computation, so the two can never disagree.
    Cached, because the customers of a batch share ``now`` and mostly their zone and window.
    """
    return tuple(next_send_at(hour, tz, now, not_before, deadline) for hour in range(N_HOURS))


@lru_cache(maxsize=8192)
def _send_instant(day: date, local_hour: int, zone: ZoneInfo) -> datetime:
    """UTC instant at which ``local_hour`` starts on local ``day`` (cached: batches share zones and days)."""
    wall = datetime.combine(day, time(local_hour), tzinfo=zone)  # fold=0: first of two ambiguous instants
    instant = wall.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall.replace(tzinfo=None):
        return instant
    # In a gap, fold=0 applies the offset from before the transition, so ``instant`` lies past the
    # transition and fold=1 (the offset from after it) lies before; the transition is between them.
    return _transition_between(wall.replace(fold=1).astimezone(UTC), instant, zone)


def _transition_between(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """First whole second in ``(before, after]`` whose UTC offset in ``zone`` equals that of ``after``."""
    target_offset = after.astimezone(zone).utcoffset()
    low, high = int(before.timestamp()), int(after.timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if datetime.fromtimestamp(middle, zone).utcoffset() == target_offset:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC)
