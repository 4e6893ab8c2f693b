"""A batch's answer and its log: the response models' bytes without a model per row, every row logged exactly.

- The body a batch answers with is byte for byte what ``DecisionResponse`` would serialise, for rows
  of every kind (sent, no message, explored, opted out, quiet hours, ids in any script).
- Every decision of a batch is logged, with the very propensity it answered and one ``SENT`` input per
  message; decision ids are UUID version 7 carrying the decision's millisecond.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient

from sendwise.server.schemas import DecisionRequest, DecisionResponse
from sendwise.server.service import _decision_ids
from sendwise.server.store import InputKind
from tests.support.api import customer, decide, event, feedback
from tests.support.app import Clock


def _mixed_batch(n: int) -> list[dict]:
    """Customers of every kind a row can be: plain, no channel, quiet hours, a send window, ids in other scripts."""
    kinds = [
        {},
        {"channels": []},
        {"quiet_hours": {"email": {"start": 20, "end": 9}}},
        {"timezone": "Asia/Kathmandu", "channels": ["sms"]},
        {"lifecycle_stage": "onboarding", "channels": ["push", "email"]},
    ]
    names = ["c", "ç-é", "客户", "ع-1", "c\"quote\\slash"]
    return [customer(f"{names[i % len(names)]}-{i}", **kinds[i % len(kinds)]) for i in range(n)]


def test_a_batch_answer_is_the_bytes_the_response_models_give(client: TestClient, clock: Clock) -> None:
    (opted,) = decide(client, customer("c-opted", channels=["email", "push"]))
    assert feedback(client, event(opted, "unsubscribed", "u-1", clock.now, channel="email")) == ["applied"]
    service = client.app.state.service
    request = DecisionRequest.model_validate({"customers": [*_mixed_batch(60), customer("c-opted")]})
    for window in (None, clock.now + timedelta(hours=10)):
        if window is not None:  # a deadline 10 h ahead: the other hours are outside the send window
            request = DecisionRequest.model_validate(
                {"customers": [{**c, "deadline": window.isoformat()} for c in _mixed_batch(60)]})
        rows = service.decide(request, clock.now)
        models = rows.decisions
        assert rows.json() == DecisionResponse(decisions=models).model_dump_json().encode()
        assert [d.customer_id for d in models] == [c.customer_id for c in request.customers]
        assert {d.channel for d in models} >= {"none"}
        assert {d.reason.mode for d in models} <= {"exploration", "exploitation"}
        rules = {g.rule for d in models for g in d.reason.guardrails}
        assert {"quiet_hours", "unsubscribed"} <= rules if window is None else "send_window" in rules


def test_every_row_of_a_batch_is_logged_with_the_propensity_it_answered(client: TestClient, clock: Clock) -> None:
    decisions = decide(client, *_mixed_batch(300))
    state = client.app.state.settings.state_path
    with sqlite3.connect(state) as conn:
        logged = dict(conn.execute("SELECT decision_id, propensity FROM decisions").fetchall())
        sent = {key for (key,) in conn.execute("SELECT key FROM loop_log WHERE kind = ?", (int(InputKind.SENT),))}
    assert {d["decision_id"]: d["propensity"] for d in decisions} == logged  # exact floats, every row
    assert sent == {d["decision_id"] for d in decisions if d["channel"] != "none"}
    assert all(0.0 < d["propensity"] <= 1.0 for d in decisions)


def test_decision_ids_are_uuid7_with_the_millisecond_and_distinct(clock: Clock) -> None:
    ids = _decision_ids(5000, clock.now)
    parsed = [uuid.UUID(i) for i in ids]
    assert [str(u) for u in parsed] == ids
    assert len(set(ids)) == len(ids)
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    assert {u.int >> 80 for u in parsed} == {int(clock.now.timestamp() * 1000)}
    random_bits = [(u.int >> 64 & 0xFFF) << 62 | u.int & (1 << 62) - 1 for u in parsed]
    assert len(set(random_bits)) == len(ids) and max(random_bits) > 1 << 70  # the 74 bits vary
