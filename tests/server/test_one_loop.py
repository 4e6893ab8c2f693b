"""One learning loop: the server drives the very ``Learner`` the simulator drives, with the same inputs.

- For the same decisions, events and clock, a served model and an in-process ``Learner`` fed those
  inputs end with identical arrays (posterior, open messages, delays), whatever the event order,
  duplicates and restarts (property-based).
- A fresh server on the seed world starts from the world's sourced rates: plausible options, and one
  unsubscribe does not silence a segment.
- Fast unsubscribes and slow attribution windows no longer collapse the served model onto "no message".
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.models import Learner, Resolved, Sends, load_policy
from sendwise.server import Settings
from sendwise.server.live_model import LiveModel
from sendwise.server.store import InputKind, LoopInput, SQLiteStore
from tests.support.api import customer, decide, event, feedback
from tests.support.app import API_KEY, START, Clock, serve
from tests.support.catalogs import CATALOG
from tests.support.stores import on_every_store

HOUR = 3600.0
OUTCOME_EVENT = {0: "clicked", 1: "unsubscribed"}


def sends_of(decisions: list[dict[str, Any]], requests: list[dict[str, Any]]) -> Sends:
    """What the in-process loop hears of the messages the responses plan."""
    planned = [(d, r) for d, r in zip(decisions, requests, strict=True) if d["channel"] != "none"]
    return Sends(key=np.array([d["decision_id"] for d, _ in planned], dtype=object),
                 cell_idx=np.array([CATALOG.cell(r["region"], r["industry"], r["campaign_type"]) for _, r in planned]),
                 arm=np.array([CATALOG.arm(d["channel"], d["local_hour"]) for d, _ in planned]),
                 sent_at=np.array([_hours(d["send_at"]) for d, _ in planned]))


def _hours(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp() / HOUR


def resolved(rows: list[tuple[dict[str, Any], int, float, bool]], cells: dict[str, int]) -> Resolved:
    """(decision, outcome, at in hours, arrived) rows as one ``Resolved`` input."""
    return Resolved(key=np.array([d["decision_id"] for d, *_ in rows], dtype=object),
                    cell_idx=np.array([cells[d["decision_id"]] for d, *_ in rows], dtype=np.int64),
                    arm=np.array([CATALOG.arm(d["channel"], d["local_hour"]) for d, *_ in rows], dtype=np.int64),
                    outcome_idx=np.array([o for _, o, _, _ in rows], dtype=np.int64),
                    successes=np.array([1.0 if a else 0.0 for *_, a in rows]),
                    failures=np.array([0.0 if a else 1.0 for *_, a in rows]),
                    sent_at=np.array([_hours(d["send_at"]) for d, *_ in rows]),
                    resolved_at=np.array([at for _, _, at, _ in rows]), arrived=np.array([a for *_, a in rows]))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_served_and_the_in_process_loop_end_with_identical_arrays(data, make_settings: Callable[..., Settings],
                                                                       policy_path: Path, tmp_path: Path) -> None:
    clock = Clock(START)
    state_dir = Path(tempfile.mkdtemp(dir=tmp_path))  # a fresh store per example
    server_settings = make_settings(decision_seed=1, state_dir=state_dir)  # the same decisions in every example
    requests = [customer(f"c-{i}", region=["NA", "EU"][i % 2], campaign_type=["broadcast", "cart_reminder"][i % 3 % 2],
                         channels=[["email", "push", "sms"], ["push"], ["email", "sms"]][i % 3]) for i in range(24)]
    learner = Learner(load_policy(policy_path))
    with serve(server_settings, clock) as client:
        decisions = decide(client, *requests)
    learner.sent(sends_of(decisions, requests))
    sent = [d for d in decisions if d["channel"] != "none"]
    cells = {d["decision_id"]: CATALOG.cell(r["region"], r["industry"], r["campaign_type"])
             for d, r in zip(decisions, requests, strict=True)}
    # Outcomes that happen: a random subset of (message, outcome), at random delays within the window.
    happened = data.draw(st.lists(st.tuples(st.integers(0, len(sent) - 1), st.integers(0, 1), st.floats(0.5, 40.0)),
                                  max_size=20, unique_by=lambda t: (t[0], t[1])))
    events = [event(sent[i], OUTCOME_EVENT[o], f"e-{i}-{o}", at=_at(sent[i]) + timedelta(hours=delay),
                    **({"channel": sent[i]["channel"]} if o == 1 else {})) for i, o, delay in happened]
    order = data.draw(st.permutations(range(len(events))))
    duplicated = data.draw(st.lists(st.sampled_from(range(len(events))), max_size=5)) if events else []
    posted = [events[k] for k in order] + [events[k] for k in duplicated]
    restart_after = data.draw(st.integers(0, len(posted)))
    clock.advance(hours=64.05)  # sends within 24 h, delays within 40 h: every event lies in the past, in its window
    first_seen: dict[str, int] = {}
    for position, ev in enumerate(posted):
        first_seen.setdefault(ev["event_id"], position)
    with serve(server_settings, clock) as client:
        if restart_after:
            feedback(client, *posted[:restart_after])
    with serve(server_settings, clock) as client:  # a restart: the model is rebuilt from the store
        if restart_after < len(posted):
            feedback(client, *posted[restart_after:])
        by_id = {e["event_id"]: (sent[i], o, _hours(e["timestamp"]), True)
                 for e, (i, o, _) in zip(events, happened, strict=True)}
        rows = [by_id[e] for e in sorted(first_seen, key=first_seen.get)]
        if rows:
            learner.resolve(resolved(rows, cells))
        clock.advance(hours=40)  # past every 72-hour window (grace included)
        service = client.app.state.service
        service.close_windows(clock.now)
        done = {(sent[i]["decision_id"], o) for i, o, _ in happened}
        closes = [(d, o, _hours(d["send_at"]) + 72.0, False) for d in sent for o in (0, 1)
                  if (d["decision_id"], o) not in done]
        learner.resolve(resolved(closes, cells))
        learner.advance(clock.now.timestamp() / HOUR)
        served = service.model.learner
        for name, got, want in (("alpha", served.posterior().alpha, learner.posterior().alpha),
                                ("beta", served.posterior().beta, learner.posterior().beta),
                                ("open messages", served.policy.pending_, learner.policy.pending_),
                                ("delays", served.delays.counts, learner.delays.counts)):
            assert got.tobytes() == want.tobytes(), f"{name} differ at {np.argwhere(got != want)[:3].tolist()}"
        assert served.clock == learner.clock and served.open_messages.n_open == learner.open_messages.n_open == 0


def _at(decision: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(decision["send_at"])


def seed_world_client(tmp_path: Path, clock: Clock, **overrides: Any) -> AbstractContextManager[TestClient]:
    """A fresh server on the seed world's default model; timers never fire, the tests close windows."""
    values = {"world": "seed", "model_uri": None, "state_dir": tmp_path / "state", "api_keys": API_KEY,
              "close_windows_seconds": 1e9, "model_refresh_seconds": 1e9, **overrides}
    return serve(Settings(**values), clock)


def segment_customers(prefix: str, n: int) -> list[dict[str, Any]]:
    return [{"customer_id": f"{prefix}{i}", "timezone": "America/New_York", "region": "NA", "industry": "ecommerce",
             "campaign_type": "cart_reminder", "channels": ["email", "push", "in_app", "sms"]} for i in range(n)]


def test_a_fresh_server_prices_options_by_the_worlds_rates_and_one_unsubscribe_does_not_silence_a_segment(
        tmp_path: Path) -> None:
    clock = Clock(START)
    with seed_world_client(tmp_path, clock, decision_seed=0) as client:  # Thompson draws: reproducible
        posterior = client.get("/v1/segments/NA/ecommerce/cart_reminder/posterior").json()
        assert posterior["best"] is not None and posterior["best"]["net_value"] > 0  # not "no message wins"
        first = decide(client, *segment_customers("a", 200))
        sends = [d for d in first if d["channel"] != "none"]
        assert len(sends) > 150
        exploiting = [d for d in sends if d["reason"]["mode"] == "exploitation"]
        # A Thompson draw may rank a night hour first now and then (never in 80 seeds tried); not routinely.
        night = [d for d in exploiting if not 6 <= d["local_hour"] <= 22]
        assert len(night) <= 0.01 * len(exploiting), "night-time sends as exploitation"
        clock.advance(hours=24)  # every message has gone out
        feedback(client, event(sends[0], "unsubscribed", "u-1", at=_at(sends[0]) + timedelta(minutes=5),
                               channel=sends[0]["channel"]))
        client.app.state.service.close_windows(clock.now)
        after = decide(client, *segment_customers("b", 200))
        assert sum(d["channel"] != "none" for d in after) > 150, "one unsubscribe silenced the segment"


def test_fast_unsubscribes_and_slow_windows_do_not_collapse_the_served_model(tmp_path: Path) -> None:
    """Unsubscribes arrive within hours, the failures of every other message only when its window closes.

    Counting only what arrived made every unsubscribe rate look huge by day 3 (86% "no message" on the
    product before the one loop); open messages weighed by arrival keep the rates honest.
    """
    clock = Clock(START)
    rng = np.random.default_rng(4)
    no_message, events = [], []
    with seed_world_client(tmp_path, clock) as client:
        service = client.app.state.service
        for day in range(4):
            decisions = decide(client, *segment_customers(f"d{day}-", 300))
            sends = [d for d in decisions if d["channel"] != "none"]
            no_message.append(1 - len(sends) / len(decisions))
            for k, d in enumerate(sends):
                if rng.random() < 0.03:  # unsubscribes: 3% of messages, an hour after the send
                    events.append(event(d, "unsubscribed", f"u-{day}-{k}", at=_at(d) + timedelta(hours=1),
                                        channel=d["channel"]))
                elif rng.random() < 0.05:
                    events.append(event(d, "clicked", f"c-{day}-{k}", at=_at(d) + timedelta(hours=2)))
            clock.advance(hours=24)
            due = [e for e in events if datetime.fromisoformat(e["timestamp"]) <= clock.now]
            events = [e for e in events if e not in due]  # the rest arrive the next day
            if due:
                feedback(client, *due)
            service.close_windows(clock.now)
    assert max(no_message[2:]) < 0.3, f"share of 'no message' by day: {np.round(no_message, 2).tolist()}"


@on_every_store
def test_a_model_applies_its_own_commits_as_logged_and_ends_where_a_replay_of_the_log_ends(
        client: TestClient, clock: Clock, monkeypatch: pytest.MonkeyPatch) -> None:
    service = client.app.state.service
    reads: list[int] = []
    read_log = service.store.input_log
    monkeypatch.setattr(service.store, "input_log", lambda version, after, **kw: reads.append(after) or read_log(
        version, after, **kw))
    decisions = decide(client, *[customer(f"c-{i}") for i in range(40)])
    sent = [d for d in decisions if d["channel"] != "none"]
    assert sent
    clock.advance(hours=30)
    statuses = feedback(client, *[event(d, "clicked", f"e-{i}") for i, d in enumerate(sent[:10])],
                        *[event(d, "delivered", f"d-{i}") for i, d in enumerate(sent)])
    assert set(statuses) == {"applied"}
    assert len(reads) == 1  # only the catch-up before deciding: the commits were applied as they were logged
    policy, version = service.loader.load()
    replayed = LiveModel(policy, version, service.rules)
    replayed.catch_up(service.store, fresh=True)
    live = service.model
    assert replayed.applied_seq == live.applied_seq > 0
    for ours, theirs in zip(live.learner.posterior(), replayed.learner.posterior(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(live.learner.open_messages.by_cell, replayed.learner.open_messages.by_cell)


def test_the_inputs_sqlite_numbers_at_logging_are_the_ones_its_log_reads_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    inputs = [LoopInput(int(InputKind.SENT), f"d-{i}", 1, 3, -1, 0.0, 0.0, 10.0 + i, 10.0) for i in range(5)]
    with store.transaction() as tx:
        assert tx.log_inputs("v1", inputs[:2]) is not None
        assert tx.log_inputs("v2", [inputs[2]]) is not None  # another version's rows take seqs in between
        logged = tx.log_inputs("v1", inputs[3:])
        assert tx.log_inputs("v1", []) == []
    assert logged == store.input_log("v1", 3)
    assert [r.input for r in store.input_log("v1", 0)] == [*inputs[:2], *inputs[3:]]
    store.close()
