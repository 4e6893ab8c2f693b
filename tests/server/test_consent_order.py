"""B8: an opt-out is never overridden by a consent that is not unambiguously later, on SQLite and on Redis.

Clients' clocks may be off by up to the tolerated skew (5 minutes), so a consent timestamped a few
minutes "later" than an unsubscribe may well have been given before it. The property test drives
random interleavings of opt-outs and consents through the API, with timestamps anywhere within the
skew of the server's clock, some events sent twice, some sent together in one request, and checks
what the next decision may use:

- safety: the channel is allowed only if every opt-out was followed (in the order the server
  received them) by a consent timestamped more than the skew after it;
- liveness: it is allowed when no opt-out arrived, or when a consent received after the last opt-out
  is timestamped more than the skew after every opt-out.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sendwise.server.consent import MAX_CLOCK_SKEW
from tests.support.api import customer, decide, event
from tests.support.app import Clock
from tests.support.stores import on_every_store

SKEW = MAX_CLOCK_SKEW.total_seconds()
BLOCKED_EMAIL = {"rule": "unsubscribed", "channel": "email", "hours": list(range(24))}


def email_allowed(client: TestClient, customer_id: str) -> bool:
    """Whether the next decision for the customer may use email (read from its guardrails, not sampled)."""
    (decision,) = decide(client, customer(customer_id, channels=["email"]))
    return BLOCKED_EMAIL not in decision["reason"]["guardrails"]


# One step: opt out or consent; seconds the server's clock moves first, unless the event goes ``together`` in
# the previous step's request; its timestamp's offset from the server's clock, within the skew; whether it
# is sent twice.
steps = st.lists(st.fixed_dictionaries({
    "opt_out": st.booleans(),
    "advance": st.sampled_from([0, 60, 299, 300, 301, 600, 900]),
    "offset": st.one_of(st.sampled_from([-SKEW, -1.0, 0.0, 1.0, SKEW]), st.floats(-SKEW, SKEW)),
    "together": st.booleans(),
    "twice": st.booleans(),
}), min_size=1, max_size=8)


@on_every_store
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
@example(plan=[  # the reported case: a consent 4 minutes ahead, then an unsubscribe timestamped now
    {"opt_out": False, "advance": 0, "offset": 240.0, "together": False, "twice": False},
    {"opt_out": True, "advance": 0, "offset": 0.0, "together": False, "twice": False}])
@example(plan=[  # the same two in one request
    {"opt_out": False, "advance": 0, "offset": 240.0, "together": False, "twice": False},
    {"opt_out": True, "advance": 0, "offset": 0.0, "together": True, "twice": False}])
@example(plan=[  # an opt-out, then a consent received later but timestamped within the skew of it
    {"opt_out": True, "advance": 0, "offset": SKEW, "together": False, "twice": False},
    {"opt_out": False, "advance": 600, "offset": -SKEW, "together": False, "twice": True}])
def test_an_opt_out_stands_until_a_consent_is_unambiguously_later(client: TestClient, clock: Clock,
                                                                  plan: list[dict[str, Any]]) -> None:
    customer_id = f"c-{time.monotonic_ns()}"
    (decision,) = decide(client, customer(customer_id, channels=["email", "push"]))
    batch: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []
    received: list[tuple[bool, float]] = []  # distinct events in the order the server receives them
    for i, step in enumerate(plan):
        if not (step["together"] and batch):
            if batch:
                _post(client, batch)
            batch = []
            clock.advance(seconds=step["advance"])
        at = clock.now + timedelta(seconds=step["offset"])
        one = event(decision, "unsubscribed" if step["opt_out"] else "consent", f"{customer_id}-{i}", at,
                    channel="email")
        batch += [one, one] if step["twice"] else [one]
        sent.append(one)
        received.append((step["opt_out"], at.timestamp()))
    _post(client, batch)
    _post(client, sent, duplicates=True)  # everything again: nothing changes
    allowed = email_allowed(client, customer_id)

    opt_outs = [(i, at) for i, (opt_out, at) in enumerate(received) if opt_out]
    consents = [(i, at) for i, (opt_out, at) in enumerate(received) if not opt_out]
    superseded = all(any(j > i and c_at - o_at > SKEW for j, c_at in consents) for i, o_at in opt_outs)
    assert superseded or not allowed, f"allowed although an opt-out stands: {received}"
    if opt_outs:
        last, latest = max(i for i, _ in opt_outs), max(at for _, at in opt_outs)
        clearly_later = any(j > last and c_at - latest > SKEW for j, c_at in consents)
    else:
        clearly_later = True
    assert allowed or not clearly_later, f"blocked although a consent is unambiguously later: {received}"


def _post(client: TestClient, events: list[dict[str, Any]], *, duplicates: bool = False) -> None:
    response = client.post("/v1/feedback", json={"events": events})
    assert response.status_code == 200, response.text
    statuses = [r["status"] for r in response.json()["results"]]
    seen: set[str] = set()
    for e, status in zip(events, statuses, strict=True):
        assert (status == "duplicate") == (duplicates or e["event_id"] in seen), (e, status)
        seen.add(e["event_id"])
