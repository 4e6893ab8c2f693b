"""B3: idempotency and replay. Applying feedback is a fold over the set of distinct events.

For random streams ``S`` with duplicates, in random order and random request batches, through the
service layer of one in-process app: posterior(S) == posterior(dedup(S)) == posterior(S ++ S) ==
posterior(shuffle(S)) == the reference fold. Each variant runs on its own copy of the same decisions
(same cells and arms, new ids), so the four posterior changes are measured on one app and compared
exactly. ``SENDWISE_REPLAY_EXAMPLES`` sets the number of streams (RELIABILITY B3: 500 in CI, 20,000
in the long tier). The 409 for a reused ``event_id`` with other content is tested with the feedback
rules in ``tests/server/test_feedback_learning.py``.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.server.schemas import FeedbackRequest
from tests.support.api import event, seed_customer
from tests.support.app import app_client
from tests.support.fold import Placed, decide_and_place, reference_successes, served_posterior

N_DECISIONS = 12
EVENT_TYPES = ("clicked", "converted", "opened", "delivered", "failed", "unsubscribed")
EXAMPLES = int(os.environ.get("SENDWISE_REPLAY_EXAMPLES", "100"))
Events = list[dict[str, Any]]


@dataclass
class Template:
    """An app with a set of decisions to clone for every variant of a stream."""

    client: TestClient
    decision_ids: list[str]
    placed: dict[str, Placed]

    def posterior(self) -> np.ndarray:
        """The served alpha and beta, stacked (a copy)."""
        policy = self.client.app.state.service.model.policy
        return np.stack([policy.alpha_, policy.beta_])

    def clone_decisions(self) -> dict[str, str]:
        """Copies of the template decisions under new ids (same cell, arm, window); old id → new id."""
        clones = {old: str(uuid.uuid4()) for old in self.decision_ids}
        with self.client.app.state.service.store.transaction() as tx:
            records = tx.decisions(self.decision_ids)
            tx.add_decisions(replace(records[old], decision_id=new) for old, new in clones.items())
        return clones


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    with app_client(tmp_path_factory.mktemp("replay")) as client:
        # One channel per customer, three channels in turn: several decisions share a cell and an arm.
        customers = [seed_customer(f"t{i}", channels=[("email", "push", "sms")[i % 3]]) for i in range(N_DECISIONS)]
        decisions, placed = decide_and_place(client, customers)
        yield Template(client, [d["decision_id"] for d in decisions], placed)


def posterior_change(template: Template, stream: Events, batch_sizes: list[int]) -> np.ndarray:
    """Alpha and beta change (stacked) from recording ``stream`` on fresh clones, in batches of the given sizes.

    Goes through the service layer (validated requests, the route's one call) rather than HTTP, for speed.
    """
    clones = template.clone_decisions()
    run = uuid.uuid4().hex[:8]  # event ids are global: each variant gets its own namespace
    events = [e | {"decision_id": clones[e["decision_id"]], "event_id": f"{run}-{e['event_id']}"} for e in stream]
    service, before = template.client.app.state.service, template.posterior()
    start, batch = 0, 0
    while start < len(events):
        size = batch_sizes[batch % len(batch_sizes)]
        service.record_feedback(FeedbackRequest(events=events[start:start + size]), datetime.now(UTC))
        start, batch = start + size, batch + 1
    return template.posterior() - before


@st.composite
def streams(draw: st.DrawFn) -> tuple[Events, list[int], Events]:
    """A stream with up to 30% duplicates in random order, its batch sizes, and a shuffle of it.

    Events name decisions by index into the template (``"0"`` … ``"11"``); the test maps them to ids.
    """
    timestamp = datetime.now(UTC).isoformat()
    distinct = draw(st.lists(st.tuples(st.integers(0, N_DECISIONS - 1), st.sampled_from(EVENT_TYPES)),
                             min_size=1, max_size=40))
    events = [event(str(d), kind, f"e{i}", timestamp) for i, (d, kind) in enumerate(distinct)]
    repeats = draw(st.lists(st.sampled_from(events), max_size=int(0.3 * len(events))))
    stream = draw(st.permutations(events + repeats))
    batch_sizes = draw(st.lists(st.integers(1, 10), min_size=1, max_size=5))
    return stream, batch_sizes, draw(st.permutations(stream))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(drawn=streams())
def test_posterior_is_a_fold_over_distinct_events(template: Template, drawn: tuple[Events, list[int], Events]) -> None:
    stream, batch_sizes, shuffled = drawn

    def resolve(events: Events) -> Events:
        return [e | {"decision_id": template.decision_ids[int(e["decision_id"])]} for e in events]

    stream, shuffled = resolve(stream), resolve(shuffled)
    distinct = list({e["event_id"]: e for e in stream}.values())
    successes = reference_successes(template.placed, distinct)
    expected = np.stack([successes, np.zeros_like(successes)])  # no window closes: beta stays
    variants = {"S": stream, "dedup(S)": distinct, "S ++ S": stream + stream, "shuffle(S)": shuffled}
    for name, variant in variants.items():
        change = posterior_change(template, variant, batch_sizes)
        assert np.array_equal(change, expected), (
            f"posterior({name}) differs from the fold over distinct events at {np.argwhere(change != expected)[:5]}")


def test_restarts_replay_the_log_to_the_same_posterior_digest(template: Template) -> None:
    """Two restarts on the same state rebuild a posterior with the live one's SHA-256, bit for bit."""
    now = datetime.now(UTC).isoformat()
    clones = list(template.clone_decisions().values())
    events = [event(clones[i % len(clones)], EVENT_TYPES[i % len(EVENT_TYPES)], f"digest-{i}", now)
              for i in range(3 * N_DECISIONS)]
    assert template.client.post("/v1/feedback", json={"events": events}).status_code == 200
    live = hashlib.sha256(template.posterior().tobytes()).hexdigest()
    for _ in range(2):
        rebuilt = np.stack(served_posterior(template.client.app.state.settings.state_dir))
        assert hashlib.sha256(rebuilt.tobytes()).hexdigest() == live
