"""The dashboard's reads through the store: ``Store.activity`` and ``Store.first_served`` give the same
answers on SQLite and Redis for the same writes, SQLite answers without waiting for a writer, and the
dashboard pages render with the state in Redis.

Redis is the tests' own ``redis-server`` (``tests.support.redis``); every Redis test is skipped, saying
why, when ``redis-server`` or the ``redis`` client is missing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sendwise.server import Settings
from sendwise.server import redis_store as redis_store_module
from sendwise.server.activity import CLOSING_SOON_ROWS, HOUR, Activity, FeedbackCount, HourlyCount, OpenWindow
from sendwise.server.schemas import CustomerRequest, DecisionRequest
from sendwise.server.store import DecisionRecord, EventRecord, SQLiteStore, Store
from tests.support.api import customer, decide, event, feedback
from tests.support.app import Clock, serve
from tests.support.redis import RedisServer, redis_store
from tests.support.stores import VERSION, event_record, on_every_store, on_redis, record, writer_holding_the_lock

UNTIL = 1_741_089_600.0  # 2025-03-04 12:00 UTC
WINDOWS = (1, 24, 24 * 7)


def decision(decision_id: str, created_at: float, window: float | None = None, customer: str = "p-1",
             channel: str = "email", **fields: Any) -> DecisionRecord:
    """An open decision made at ``created_at`` whose window closes at ``window``; closed at once if no message."""
    if channel == "none":
        return record(decision_id, customer, channel, send_at=None, created_at=created_at, **fields)
    return record(decision_id, customer, channel, send_at=created_at + 60.0, created_at=created_at,
                  window_closes_at=created_at + HOUR if window is None else window, **fields)


def received(event_id: str, decision_id: str, at: float, event_type: str = "clicked", status: str = "applied",
             customer: str | None = "p-1") -> EventRecord:
    return replace(event_record(event_id, decision_id, customer), type=event_type, status=status, received_at=at)


def write(target: Store, decisions: Sequence[DecisionRecord], events: Sequence[EventRecord] = (),
          close: Sequence[str] = (), erase: Sequence[str] = ()) -> None:
    """The writes the service makes: decisions, then events, then windows closed, then erasures."""
    with target.transaction(durable=False) as tx:
        tx.add_decisions(decisions)
    if events:
        with target.transaction() as tx:
            tx.add_events(events)
    if close:
        with target.transaction() as tx:
            for found in tx.decisions(close).values():
                tx.update_decisions([replace(found, closed=True, delivery="delivered")])
    for pseudonym in erase:
        with target.transaction() as tx:
            tx.erase_customer(pseudonym)


# --- the contract, on both stores ----------------------------------------------------------------------------


@on_every_store
def test_activity_counts_the_window_by_hour_channel_and_status(store: Store) -> None:
    since = UNTIL - 24 * HOUR
    decisions = [
        decision("d-old", since, window=UNTIL - HOUR),  # at the window's open start: not in it
        decision("d-first", since + 1.0, explored=True),  # bucket 0
        decision("d-tie-b", UNTIL - 2.5 * HOUR, window=UNTIL + 2 * HOUR, customer="p-2", channel="sms"),
        decision("d-tie-a", UNTIL - 2.5 * HOUR, window=UNTIL + 2 * HOUR, customer="p-2", channel="push"),
        decision("d-none", UNTIL - 1.0, channel="none", model_version="v2"),  # closed when made
        decision("d-edge", UNTIL, window=UNTIL + 30 * HOUR),  # at the window's closed end: bucket 24
        decision("d-future", UNTIL + 1.0, window=UNTIL + 24 * HOUR),  # after it
    ]
    events = [
        received("e-old", "d-old", since),
        received("e-1", "d-first", UNTIL - HOUR),
        received("e-2", "d-tie-a", UNTIL - 2 * HOUR, customer="p-2"),
        received("e-3", "d-first", UNTIL - 0.5 * HOUR, status="duplicate"),
        received("e-4", "d-edge", UNTIL, event_type="opened", status="late"),
        received("e-orphan", "d-unknown", UNTIL - 3 * HOUR, status="unknown_decision", customer=None),
    ]
    assert store.first_served(VERSION) is None
    write(store, decisions, events, close=("d-first",))

    activity = store.activity(UNTIL, 24)
    assert activity.hourly == [HourlyCount(0, "email", 1), HourlyCount(21, "push", 1), HourlyCount(21, "sms", 1),
                               HourlyCount(23, "none", 1), HourlyCount(24, "email", 1)]
    assert (activity.decisions, activity.explored) == (5, 1)
    assert activity.feedback == [FeedbackCount("clicked", "applied", 2), FeedbackCount("clicked", "duplicate", 1),
                                 FeedbackCount("clicked", "unknown_decision", 1), FeedbackCount("opened", "late", 1)]
    assert (activity.open_decisions, activity.closing_within_day) == (5, 4)  # d-future closes at exactly +24 h
    assert [(w.created_at, w.window_closes_at) for w in activity.closing_soon] == [
        (since, UNTIL - HOUR), (UNTIL - 2.5 * HOUR, UNTIL + 2 * HOUR), (UNTIL - 2.5 * HOUR, UNTIL + 2 * HOUR),
        (UNTIL + 1.0, UNTIL + 24 * HOUR), (UNTIL, UNTIL + 30 * HOUR)]
    assert activity.closing_soon[1] == OpenWindow("push", "NA", "ecommerce", "broadcast", UNTIL - 2.5 * HOUR,
                                                  UNTIL + 2 * HOUR)  # d-tie-a before d-tie-b: ties go by id
    assert activity.closing_soon[2].channel == "sms"
    assert (store.first_served(VERSION), store.first_served("v2"), store.first_served("v3")) == (since, UNTIL - 1.0,
                                                                                                 None)
    assert store.activity(UNTIL - 5 * HOUR, 1) == Activity(UNTIL - 5 * HOUR, 1, [], 0, [], 5, 3,
                                                           activity.closing_soon)

    write(store, [], erase=("p-1",))  # the rest belong to p-2, and the orphan event to no one
    after = store.activity(UNTIL, 24)
    assert (after.hourly, after.explored) == ([HourlyCount(21, "push", 1), HourlyCount(21, "sms", 1)], 0)
    assert after.feedback == [FeedbackCount("clicked", "applied", 1), FeedbackCount("clicked", "unknown_decision", 1)]
    assert (after.open_decisions, after.closing_within_day, len(after.closing_soon)) == (2, 2, 2)
    assert (store.first_served(VERSION), store.first_served("v2")) == (UNTIL - 2.5 * HOUR, None)


@on_every_store
def test_the_windows_closing_soonest_are_the_first_by_time_then_decision_id(store: Store) -> None:
    rows = [decision(f"d-{i:02d}", UNTIL - i, window=UNTIL + (i // 4) * HOUR, customer=f"p-{i}")
            for i in reversed(range(CLOSING_SOON_ROWS + 4))]
    write(store, rows)
    soon = store.activity(UNTIL, 24).closing_soon
    assert [w.created_at for w in soon] == [UNTIL - i for i in range(CLOSING_SOON_ROWS)]


@pytest.fixture
def both_stores(redis_url: str, tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    sqlite, redis = SQLiteStore(tmp_path / "state.db"), redis_store(redis_url, tmp_path)
    yield sqlite, redis
    sqlite.close()
    redis.close()


def test_both_stores_answer_alike_after_the_same_random_writes(both_stores: tuple[Store, Store],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Same answers for every window; Redis reads 3 entries at a time, so chunk edges fall inside runs of
    decisions made at the same time (one request's batch)."""
    monkeypatch.setattr(redis_store_module, "CHUNK", 3)
    rng = np.random.default_rng(11)
    decisions: list[DecisionRecord] = []
    for batch in range(25):
        made = UNTIL - float(rng.uniform(0.0, 8 * 24 * HOUR))
        for i in range(int(rng.integers(1, 8))):
            channel = str(rng.choice(["email", "push", "sms", "none"]))
            decisions.append(decision(f"d-{batch}-{i}", made, window=made + float(rng.uniform(1.0, 72 * HOUR)),
                                      customer=f"p-{rng.integers(6)}", channel=channel,
                                      explored=bool(rng.random() < 0.3), model_version=str(rng.choice(["v1", "v2"]))))
    events = []
    for k, i in enumerate(rng.integers(len(decisions), size=60)):
        at = UNTIL if rng.random() < 0.2 else UNTIL - float(rng.uniform(0.0, 8 * 24 * HOUR))
        events.append(received(f"e-{k}", decisions[i].decision_id, at,
                               event_type=str(rng.choice(["clicked", "opened", "unsubscribed"])),
                               status=str(rng.choice(["applied", "late", "duplicate"])),
                               customer=None if rng.random() < 0.1 else decisions[i].customer))
    open_ids = [d.decision_id for d in decisions if not d.closed]
    close = tuple(str(i) for i in rng.choice(open_ids, size=len(open_ids) // 3, replace=False))
    sqlite, redis = both_stores
    for each in both_stores:
        write(each, decisions, events, close=close, erase=("p-0",))
    ends = [UNTIL, UNTIL - 5 * HOUR, UNTIL - 3.5 * 24 * HOUR, decisions[0].created_at, events[0].received_at]
    for until in ends:
        for hours in WINDOWS:
            assert sqlite.activity(until, hours) == redis.activity(until, hours), (until, hours)
    week = sqlite.activity(UNTIL, 24 * 7)
    assert week.decisions > 3 * 3 and len(week.feedback) > 3 and week.open_decisions > CLOSING_SOON_ROWS, week
    for version in ("v1", "v2", "v3"):
        assert sqlite.first_served(version) == redis.first_served(version), version


# --- SQLite: reads never wait for a writer -------------------------------------------------------------------


def test_sqlite_answers_from_the_last_commit_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    sqlite = SQLiteStore(tmp_path / "state.db")
    write(sqlite, [decision("d-1", UNTIL - 60.0)])
    with writer_holding_the_lock(sqlite, lambda tx: tx.add_decisions([decision("d-2", UNTIL - 30.0,
                                                                               customer="p-2")])):
        started = time.monotonic()
        during, first = sqlite.activity(UNTIL, 1), sqlite.first_served(VERSION)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"the read waited {elapsed:.2f} s for the writer (limit 1.0 s)"
    assert (during.decisions, during.open_decisions, first) == (1, 1, UNTIL - 60.0)
    assert sqlite.activity(UNTIL, 1).decisions == 2
    sqlite.close()


@on_every_store
def test_a_dry_run_decision_takes_no_lock_while_a_writer_holds_one(client: TestClient, clock: Clock) -> None:
    """The dashboard's explanation plans from a snapshot: it never waits for decisions or feedback."""
    service = client.app.state.service
    decide(client, customer("c-1"))
    with writer_holding_the_lock(service.store, lambda tx: tx.set_consent("p-x", "email", True, 1.0)):
        started = time.monotonic()
        explained = service.decide(DecisionRequest(customers=[CustomerRequest(**customer("c-2"))]), clock.now,
                                   dry_run=True)
        elapsed = time.monotonic() - started
    assert len(explained.decisions) == 1
    assert elapsed < 1.0, f"the dry run waited {elapsed:.2f} s for the writer (limit 1.0 s)"
    assert service.store.open_decisions() == 1  # it logged nothing


# --- Redis: the indexes -------------------------------------------------------------------------------------


def test_erasure_leaves_no_index_entry_behind(redis_server: RedisServer, redis_url: str,
                                              tmp_path: Path) -> None:
    redis_state = redis_store(redis_url, tmp_path)
    write(redis_state, [decision("d-1", UNTIL - 60.0), decision("d-3", UNTIL - 30.0, customer="p-2"),
                        decision("d-2", UNTIL - 60.0, channel="none", model_version="v2")],
          [received("e-1", "d-1", UNTIL - 10.0), received("e-3", "d-3", UNTIL - 5.0, customer="p-2")])
    redis = redis_server.client()
    keys = ("created", "received", "served:v1", "served:v2")
    assert [redis.zcard(f"sendwise:{key}") for key in keys] == [3, 2, 2, 1]
    write(redis_state, [], erase=("p-1", "p-2"))
    assert [redis.zcard(f"sendwise:{key}") for key in keys] == [0, 0, 0, 0]
    assert redis_state.activity(UNTIL, 1) == Activity(UNTIL, 1, [], 0, [], 0, 0, [])
    redis_state.close()


# --- the pages, on Redis ------------------------------------------------------------------------------------


@on_redis
def test_the_dashboard_shows_activity_and_the_first_decision_from_redis(client: TestClient, clock: Clock,
                                                                        make_settings: Callable[..., Settings]
                                                                        ) -> None:
    decisions = decide(client, customer("c-1"), customer("c-2", channels=[]), customer("c-3"))
    feedback(client, event(decisions[0], "opened", "open-1", at=clock.now))
    clock.advance(minutes=5)
    page = client.get("/dashboard")
    assert page.status_code == 200, page.text
    activity = client.app.state.service.store.activity(clock.now.timestamp(), 24)
    n_open = sum(d["channel"] != "none" for d in decisions)
    assert (activity.decisions, activity.open_decisions, len(activity.closing_soon)) == (3, n_open, n_open)
    section = page.text[page.text.index('id="activity"'):page.text.index('id="model"')]
    tiles = re.findall(r'<span class="value">([^<]*)</span><span class="label">([^<]*)</span>', section)
    assert tiles[0] == ("3", "decisions") and tiles[2] == (str(n_open), "open decisions now"), tiles
    assert "<td>opened</td>" in section and "No decisions in this window." not in section
    assert section.count('<td class="when">') == 2 * n_open  # when decided, when its window closes
    assert section.count("<rect class=\"bar\"") == len(activity.hourly)
    assert "first decision with it</dt><dd>2025-03-04 12:00 UTC" in page.text
    assert not make_settings().state_dir.joinpath("state.db").exists(), "the dashboard must not create SQLite state"


@on_redis
def test_while_redis_is_unreachable_the_page_is_503_with_retry_after(make_settings: Callable[..., Settings],
                                                                      clock: Clock, redis: RedisServer) -> None:
    with serve(make_settings(state_url=redis.url), clock) as client:  # this test's own Redis: it stops halfway
        decide(client, customer("c-1"))
        assert client.get("/dashboard").status_code == 200
        redis.stop()
        page = client.get("/dashboard")
        assert page.status_code == 503 and page.headers["retry-after"], page.text
        assert "unavailable" in page.json()["detail"]
