"""Joining feedback to decisions: what an event does to a decision, the customer and the posterior.

Each decision is one Bernoulli trial per outcome of the model (``click``, ``unsubscribe``). A
positive outcome counts at once (alpha += 1, at most once per decision); when the attribution
window closes, every outcome that did not happen counts once as a failure (beta += 1). Rules:

- ``clicked`` and ``converted`` are the ``click`` outcome; ``unsubscribed`` is the ``unsubscribe``
  outcome of the decision's channel and also blocks that channel for the customer until a ``consent``
  event for it (the later timestamp wins; at equal times the unsubscribe does);
- an event after the window (by its timestamp, or once the window was counted) is ``late``: it teaches
  nothing, but an unsubscribe is still honoured;
- an event other than ``consent`` timestamped before its decision was made (by more than
  ``MAX_CLOCK_SKEW``, the clock difference tolerated between client and server) cannot be about the
  decision's message: it is ``before_decision`` and, like a late one, teaches nothing but still
  honours an unsubscribe;
- ``failed`` marks the message undelivered, and an undelivered decision teaches nothing when it
  closes; any sign of delivery (delivered, opened, clicked, converted, unsubscribed) overrides it, in
  whichever order the events arrive.

The functions here are pure: the service reads records, calls them, and writes the results.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import NamedTuple

from sendwise.models import NO_MESSAGE, Catalog

from .schemas import EventStatus, FeedbackEvent
from .store import DecisionRecord, OutcomeDelta

MAX_CLOCK_SKEW = timedelta(minutes=5)
EVENT_OUTCOME = {"clicked": "click", "converted": "click", "unsubscribed": "unsubscribe"}
DELIVERY_EVIDENCE = frozenset({"delivered", "opened", "clicked", "converted", "unsubscribed"})


class ConsentChange(NamedTuple):
    customer: str
    channel: str
    unsubscribed: bool
    at: float


@dataclass(frozen=True)
class EventEffect:
    """What one event does: the decision's new state, its status, posterior deltas and a consent change."""

    decision: DecisionRecord
    status: EventStatus
    deltas: list[OutcomeDelta]
    consent: ConsentChange | None


def apply_event(decision: DecisionRecord, event: FeedbackEvent, catalog: Catalog) -> EventEffect:
    """The effect of ``event`` on ``decision`` under a model with ``catalog``."""
    at = event.timestamp.timestamp()
    late = decision.closed or (decision.window_closes_at is not None and at > decision.window_closes_at)
    consent = None
    if event.type in ("unsubscribed", "consent"):
        channel = event.channel or decision.channel
        if channel != NO_MESSAGE:
            consent = ConsentChange(decision.customer, channel, event.type == "unsubscribed", at)
    if event.type == "consent":
        return EventEffect(decision, "applied", [], consent)
    if at < decision.created_at - MAX_CLOCK_SKEW.total_seconds():
        return EventEffect(decision, "before_decision", [], consent)
    if late:
        return EventEffect(decision, "late", [], consent)
    updated = decision
    if event.type in DELIVERY_EVIDENCE:
        updated = replace(updated, delivery="delivered")
    elif event.type == "failed" and decision.delivery == "unknown":
        updated = replace(updated, delivery="failed")
    deltas: list[OutcomeDelta] = []
    outcome = EVENT_OUTCOME.get(event.type)
    same_channel = event.type != "unsubscribed" or (event.channel or decision.channel) == decision.channel
    if outcome is not None and same_channel and outcome not in _successes(decision):
        updated = replace(updated, successes=",".join(sorted({*_successes(decision), outcome})))
        deltas = _deltas(decision, catalog, {outcome: (1.0, 0.0)})
    return EventEffect(updated, "applied", deltas, consent)


def close_decision(decision: DecisionRecord, catalog: Catalog) -> tuple[DecisionRecord, list[OutcomeDelta]]:
    """Close an attribution window: one failure per outcome that did not happen, none if undelivered."""
    closed = replace(decision, closed=True)
    if decision.delivery == "failed":
        return closed, []
    missing = [o for o in catalog.outcomes if o not in _successes(decision)]
    return closed, _deltas(decision, catalog, {o: (0.0, 1.0) for o in missing})


def _successes(decision: DecisionRecord) -> set[str]:
    return set(filter(None, decision.successes.split(",")))


def _deltas(decision: DecisionRecord, catalog: Catalog, counts: dict[str, tuple[float, float]]) -> list[OutcomeDelta]:
    """Deltas in ``catalog``'s ids (found by name: the decision may come from an older model); none if unknown."""
    if decision.channel == NO_MESSAGE or decision.local_hour is None:
        return []
    try:
        cell = catalog.cell(decision.region, decision.industry, decision.campaign_type)
        arm = catalog.arm(decision.channel, decision.local_hour)
    except ValueError:
        return []
    return [OutcomeDelta(cell, arm, catalog.outcomes.index(o), s, f)
            for o, (s, f) in counts.items() if o in catalog.outcomes]
