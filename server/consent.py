"""The order of consent changes: one rule, which every store applies to a customer's channel.

Event timestamps come from clients whose clocks may differ from the server's by up to
``MAX_CLOCK_SKEW``, so two timestamps closer than that do not say which change came first. The rule
never lets such a doubt re-open a channel:

- an opt-out always takes effect; against an opt-out already in force it keeps the later timestamp;
- a consent lifts an opt-out only if it was received after it (the store applies changes in the
  order it receives them) **and** its timestamp is later than the opt-out's by more than
  ``MAX_CLOCK_SKEW``; otherwise the opt-out stays.

The same rule lifts (or not) the suppression list's entry that erasure leaves of an opt-out.
"""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

MAX_CLOCK_SKEW = timedelta(minutes=5)


class ConsentState(NamedTuple):
    """A customer's consent to a channel: opted out or not, as of ``at`` (UTC seconds, the event's timestamp)."""

    unsubscribed: bool
    at: float


def next_consent(current: ConsentState | None, change: ConsentState) -> ConsentState:
    """The state after ``change`` arrives, received after every change that made ``current`` (None: none).

    Examples
    --------
    >>> next_consent(ConsentState(True, 1000.0), ConsentState(False, 1200.0))  # within the skew: stays out
    ConsentState(unsubscribed=True, at=1000.0)
    >>> next_consent(ConsentState(True, 1000.0), ConsentState(False, 1301.0))
    ConsentState(unsubscribed=False, at=1301.0)
    >>> next_consent(ConsentState(False, 1240.0), ConsentState(True, 1000.0))  # an opt-out always counts
    ConsentState(unsubscribed=True, at=1000.0)
    """
    if current is None or not current.unsubscribed:
        return change
    if change.unsubscribed:
        return change if change.at > current.at else current
    return change if change.at - current.at > MAX_CLOCK_SKEW.total_seconds() else current
