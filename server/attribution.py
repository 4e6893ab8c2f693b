"""Joining feedback to decisions: what an event does to a decision, the customer and the posterior.

Each decision is one Bernoulli trial per outcome of the model (``click``, ``unsubscribe``, and ``open``
for a model whose world reports opens). A
positive outcome reaches the learning loop at once, as an ``ARRIVED`` input (at most once per
decision); when the attribution window closes, every outcome that did not happen reaches it once as
a ``CLOSED`` input with one failure. Rules:

- ``opened`` is the ``open`` outcome; ``clicked`` and ``converted`` are the ``click`` outcome and, since
  nobody clicks what they did not open, the ``open`` one too; ``converted`` is also the ``revenue``
  outcome of a model that optimises revenue: its ``value`` (USD) counts as ``value / REVENUE_UNIT`` of a
  success and the rest of one failure (capped at one unit), once per decision; a conversion without a
  value teaches revenue nothing (neither success nor failure); ``unsubscribed`` is the ``unsubscribe``
  outcome of the decision's channel and also blocks that channel (or the one the event names) for
  the customer until a ``consent`` for it that is unambiguously later (``server.consent``); an
  unsubscribe that names no channel, about a decision that sent no message, opts out of every
  channel of the catalog (the cautious reading: it must not be dropped, and no channel is named);
- an event after the window (by its timestamp, or once the window was counted) is ``late``: it teaches
  nothing, but an unsubscribe is still honoured;
- an event other than ``consent`` timestamped before its decision was made (by more than
  ``MAX_CLOCK_SKEW``, the clock difference tolerated between client and server) cannot be about the
  decision's message: it is ``before_decision`` and, like a late one, teaches nothing but still
  honours an unsubscribe;
- ``failed`` marks the message undelivered, and an undelivered decision teaches nothing when it
  closes (its ``CLOSED`` inputs carry no failure, they only close the open message); any sign of
  delivery (delivered, opened, clicked, converted, unsubscribed) overrides it, in whichever order
  the events arrive. Its first report refunds the message's spend to the budgets (a ``REFUND`` input,
  1), and a sign of delivery after it charges it again (-1).

The functions here are pure: the service reads records, calls them, and writes the results.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import NamedTuple

from sendwise.models import NO_MESSAGE, REVENUE, REVENUE_UNIT, Catalog

from .consent import MAX_CLOCK_SKEW
from .schemas import EventStatus, FeedbackEvent
from .store import DecisionRecord, InputKind, LoopInput

SECONDS_PER_HOUR = 3600.0
# The outcomes an event shows, in a catalog that has them: a click is also an open (whether or not the
# messaging system posts the open), and ``open`` exists only for models whose world reports opens.
EVENT_OUTCOMES = {"opened": ("open",), "clicked": ("click", "open"), "converted": ("click", "open", REVENUE),
                  "unsubscribed": ("unsubscribe",)}
CONSENT_EVENTS = frozenset({"unsubscribed", "consent"})  # the event types that change a customer's consent
DELIVERY_EVIDENCE = frozenset({"delivered", "opened", "clicked", "converted", "unsubscribed"})


class ConsentChange(NamedTuple):
    customer: str
    channel: str
    unsubscribed: bool
    at: float


@dataclass(frozen=True)
class EventEffect:
    """What one event does: the decision's new state, its status, loop inputs and consent changes."""

    decision: DecisionRecord
    status: EventStatus
    inputs: list[LoopInput]
    consent: tuple[ConsentChange, ...]


def apply_event(decision: DecisionRecord, event: FeedbackEvent, catalog: Catalog, *,
                personal: bool = False) -> EventEffect:
    """The effect of ``event`` on ``decision`` under a model with ``catalog`` (``personal``: keep the customer)."""
    at = event.timestamp.timestamp()
    customer = decision.customer if personal else ""
    late = decision.closed or (decision.window_closes_at is not None and at > decision.window_closes_at)
    consent: tuple[ConsentChange, ...] = ()
    if event.type in CONSENT_EVENTS:
        channel = event.channel or decision.channel
        channels = catalog.channels if channel == NO_MESSAGE else (channel,)
        consent = tuple(ConsentChange(decision.customer, c, event.type == "unsubscribed", at) for c in channels)
    if event.type == "consent":
        return EventEffect(decision, "applied", [], consent)
    if at < decision.created_at - MAX_CLOCK_SKEW.total_seconds():
        return EventEffect(decision, "before_decision", [], consent)
    if late:
        return EventEffect(decision, "late", [], consent)
    updated = decision
    inputs: list[LoopInput] = []
    if event.type in DELIVERY_EVIDENCE and decision.delivery != "delivered":
        updated = replace(updated, delivery="delivered")
        if decision.delivery == "failed":
            inputs = _inputs(decision, catalog, InputKind.REFUND, {"": (-1.0, 0.0)}, at, customer)
    elif event.type == "failed" and decision.delivery == "unknown":
        updated = replace(updated, delivery="failed")
        inputs = _inputs(decision, catalog, InputKind.REFUND, {"": (1.0, 0.0)}, at, customer)
    same_channel = event.type != "unsubscribed" or (event.channel or decision.channel) == decision.channel
    learned = learned_outcomes(decision.successes)
    new = [o for o in EVENT_OUTCOMES.get(event.type, ()) if o in catalog.outcomes and o not in learned]
    if new and same_channel:
        counts = {o: _revenue(event.value) if o == REVENUE else (1.0, 0.0) for o in new}
        shares = {**learned, **{o: counts[o][0] for o in new}}
        updated = replace(updated, successes=",".join(o if share == 1.0 else f"{o}={share!r}"
                                                      for o, share in sorted(shares.items())))
        inputs += _inputs(decision, catalog, InputKind.ARRIVED, counts, at, customer)
    return EventEffect(updated, "applied", inputs, consent)


def close_decision(decision: DecisionRecord, catalog: Catalog, *,
                   personal: bool = False) -> tuple[DecisionRecord, list[LoopInput]]:
    """Close an attribution window: one failure per outcome that did not happen, none if undelivered."""
    closed = replace(decision, closed=True)
    weight = 0.0 if decision.delivery == "failed" else 1.0
    missing = [o for o in catalog.outcomes if o not in learned_outcomes(decision.successes)]
    return closed, _inputs(decision, catalog, InputKind.CLOSED, {o: (0.0, weight) for o in missing},
                           decision.window_closes_at or decision.created_at, decision.customer if personal else "")


def sent_inputs(decisions: Iterable[DecisionRecord], *, personal: bool = False) -> list[LoopInput]:
    """The ``SENT`` inputs of decisions the serving model just made (none for the no-message arm).

    Their ``cell`` and ``arm`` are that model's own ids, so no name is looked up.
    """
    sent = int(InputKind.SENT)
    return [LoopInput(sent, d.decision_id, d.cell, d.arm, -1, 0.0, 0.0, d.send_at / SECONDS_PER_HOUR,
                      d.created_at / SECONDS_PER_HOUR, d.customer if personal else "")
            for d in decisions
            if d.teaches and d.send_at is not None and d.channel != NO_MESSAGE and d.local_hour is not None]


def _revenue(value: float | None) -> tuple[float, float]:
    """(successes, failures) of the revenue outcome for an order of ``value`` USD (None: unknown, no evidence)."""
    if value is None:
        return 0.0, 0.0
    share = min(value / REVENUE_UNIT, 1.0)
    return share, 1.0 - share


def learned_outcomes(successes: str) -> dict[str, float]:
    """A decision's ``successes`` column read back: each outcome learned as a success and its share of one
    (``click``, or ``revenue=0.25`` for an order of a quarter ``REVENUE_UNIT``)."""
    learned = {}
    for entry in filter(None, successes.split(",")):
        name, _, share = entry.partition("=")
        learned[name] = float(share) if share else 1.0
    return learned


def _inputs(decision: DecisionRecord, catalog: Catalog, kind: InputKind, counts: dict[str, tuple[float, float]],
            at: float, customer: str) -> list[LoopInput]:
    """Loop inputs in ``catalog``'s ids (found by name: the decision may come from an older model).

    None for a decision that does not teach (a baseline's outside shadow mode), for the no-message arm or
    names the catalog does not know; ``counts`` maps an outcome name
    ("" for a send, which has none) to (successes, failures). Times become hours.
    """
    if not decision.teaches or decision.channel == NO_MESSAGE or decision.local_hour is None \
            or decision.send_at is None:
        return []
    try:
        cell = catalog.cell(decision.region, decision.industry, decision.campaign_type)
        arm = catalog.arm(decision.channel, decision.local_hour)
    except ValueError:
        return []
    sent_at = decision.send_at / SECONDS_PER_HOUR
    return [LoopInput(int(kind), decision.decision_id, cell, arm, catalog.outcomes.index(o) if o else -1, s, f,
                      sent_at, at / SECONDS_PER_HOUR, customer)
            for o, (s, f) in counts.items() if not o or o in catalog.outcomes]
