"""The state stores: the store contract on SQLite and Redis alike, and what only Redis does — the
bounded-staleness snapshot, locks, the start-up checks, and B3 idempotency in Redis mode.

Redis is the tests' own ``redis-server`` (``tests.support.redis``). The server's behaviour tests that
hold for any store run on both where they live (``@on_every_store``); every Redis test is skipped,
saying why, when ``redis-server`` or the ``redis`` client is missing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.models.ope.logged import read_logs, write_logs
from sendwise.server import Settings
from sendwise.server.app import open_store
from sendwise.server.consent import ConsentState
from sendwise.server.export import decision_log
from sendwise.server.store import Erasure, InputKind, Reader, StaleReadError, Store
from tests.support.api import customer, decide, event
from tests.support.app import Clock, posterior, serve
from tests.support.catalogs import CATALOG
from tests.support.redis import RedisServer, redis_store
from tests.support.stores import (
    CLICK,
    UNSUBSCRIBE,
    VERSION,
    event_record,
    loop_input,
    on_every_store,
    on_redis,
    record,
)

# --- the store contract, on both stores ---------------------------------------------------------------------


@on_every_store
def test_decisions_round_trip_and_a_failed_transaction_changes_nothing(store: Store) -> None:
    first, second = record("d-1"), record("d-2", customer="p-2", send_at=1200.5, explored=True)
    with store.transaction(durable=False) as tx:
        tx.add_decisions(iter([first, second]))
    delivered = replace(first, delivery="delivered", successes="click")
    with store.transaction() as tx:
        assert tx.decisions(["d-1", "d-2", "d-unknown"]) == {"d-1": first, "d-2": second}
        tx.update_decisions([delivered])
    with pytest.raises(RuntimeError, match="boom"), store.transaction() as tx:
        tx.update_decisions([replace(second, delivery="failed")])
        tx.add_events([event_record("e-1", "d-2")])
        raise RuntimeError("boom")
    with store.transaction() as tx:  # waits on nothing: the failed transaction released what it held
        assert tx.decisions(["d-1", "d-2"]) == {"d-1": delivered, "d-2": second}
        assert tx.event_hashes(["e-1"]) == {}
        tx.add_events([event_record("e-1", "d-2")])
    with store.transaction() as tx:
        assert tx.event_hashes(["e-1", "e-2"]) == {"e-1": "hash-e-1"}


@on_every_store
def test_sends_skip_failed_deliveries_and_the_later_consent_change_wins(store: Store) -> None:
    email, push, old = record("d-1"), record("d-2", channel="push", send_at=1100.0), record("d-3", send_at=50.0)
    with store.transaction(durable=False) as tx:
        tx.add_decisions([email, push, old, record("d-4", customer="p-2", channel="none", send_at=None)])
    with store.transaction() as tx:
        tx.decisions(["d-2"])
        tx.update_decisions([replace(push, delivery="failed")])
    with store.transaction() as tx:
        tx.set_consent("p-1", "email", True, 10.0)
        tx.set_consent("p-1", "email", False, 5.0)  # older: ignored
        tx.set_consent("p-1", "push", False, 7.0)
        tx.set_consent("p-1", "push", True, 7.0)  # same time: the unsubscribe wins
        tx.set_consent("p-1", "sms", True, 3.0)
    with store.transaction() as tx:
        tx.set_consent("p-1", "sms", False, 304.0)  # later by more than the clock skew: consent again
    with store.transaction(durable=False) as tx:
        assert tx.sends_since(["p-1", "p-2"], 60.0) == {"p-1": [("email", 1000.0)]}
        assert tx.unsubscribed_channels(["p-1", "p-2"]) == {"p-1": {"email", "push"}}
    with store.transaction() as tx:
        tx.decisions(["d-2"])
        tx.update_decisions([replace(push, delivery="delivered")])  # a later sign of delivery counts it again
    with store.transaction(durable=False) as tx:
        assert sorted(tx.sends_since(["p-1"], 60.0)["p-1"]) == [("email", 1000.0), ("push", 1100.0)]


@on_every_store
def test_a_plans_read_of_customers_is_what_each_kinds_read_gives(store: Store) -> None:
    with store.transaction(durable=False) as tx:
        tx.add_decisions([record("d-1"), record("d-2", channel="push", send_at=1100.0),
                          record("d-3", customer="p-2", channel="sms", send_at=900.0)])
    with store.transaction() as tx:
        tx.set_consent("p-1", "email", True, 10.0)
        tx.set_consent("p-3", "push", True, 10.0)
    customers = ["p-1", "p-2", "p-3", "p-4"]
    made: list[int] = []

    def keys() -> dict[str, tuple[str, str]]:
        made.append(1)
        return {f"k-{c}-{ch}": (c, ch) for c in customers for ch in ("email", "sms")}

    for suppressed in (False, True):
        if suppressed:
            with store.transaction() as tx:
                tx.update_suppression("p-2", "k-p-2-sms", ConsentState(True, 20.0))
        with store.transaction(durable=False) as tx:
            state = tx.customer_state(customers, 60.0, keys)
            assert state == Reader.customer_state(tx, customers, 60.0, keys)  # the one-trip read = the kinds'
            assert tx.customer_state(customers, None, keys).sends == {}
        blocked = {"p-1": {"email"}, "p-3": {"push"}} | ({"p-2": {"sms"}} if suppressed else {})
        assert state.blocked == blocked and set(state.sends) == {"p-1", "p-2"}
        assert bool(made) == suppressed  # keys made only once the list holds an entry


@on_every_store
def test_the_inputs_a_transaction_logs_come_back_numbered_as_the_log_reads_them(store: Store) -> None:
    rows = [loop_input(InputKind.ARRIVED, 0, 1, CLICK, 1.0, 0.0), loop_input(InputKind.CLOSED, 0, 2, CLICK, 0.0, 1.0)]
    with store.transaction() as tx:
        first = tx.log_inputs(VERSION, rows)
        assert tx.log_inputs(VERSION, []) == []
        second = tx.log_inputs(VERSION, rows[:1])
    assert first is not None and second is not None
    assert [*first, *second] == store.input_log(VERSION, 0, fresh=True)


@on_every_store
def test_windows_close_oldest_first_into_the_exportable_decision_log(store: Store) -> None:
    rows = [record("d-late", send_at=3000.0), record("d-early", send_at=1000.0), record("d-mid", send_at=2000.0),
            record("d-none", customer="p-2", channel="none", send_at=None)]
    with store.transaction(durable=False) as tx:
        tx.add_decisions(rows)
        tx.register_model(VERSION, CATALOG.to_dict(), {"click": 1.0, "unsubscribe": -2.0})
    assert store.open_decisions() == 3
    with store.transaction() as tx:
        assert [d.decision_id for d in tx.due_decisions(2100.0, 10)] == ["d-early", "d-mid"]
    with store.transaction() as tx:
        (due,) = tx.due_decisions(2100.0, 1)
        assert due.decision_id == "d-early"
        tx.update_decisions([replace(due, closed=True, delivery="delivered", successes="click")])
    with store.transaction() as tx:
        (due,) = tx.due_decisions(2100.0, 10)
        tx.update_decisions([replace(due, closed=True)])
    assert store.open_decisions() == 1
    closed, models = store.closed_decisions()
    assert [d.decision_id for d in closed] == ["d-none", "d-early", "d-mid"]  # by creation time
    assert closed[1].successes == "click" and closed[1].closed and set(models) == {VERSION}
    log = decision_log(store)
    assert log.n_rounds == 3 and log.outcomes["click"].tolist() == [0.0, 1.0, 0.0]
    np.testing.assert_allclose(log.reward, [0.0 - 0.001, 1.0 - 0.001, -0.001])


@on_every_store
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_allowed_masks_go_from_the_store_through_the_export_bit_for_bit(store: Store, tmp_path: Path,
                                                                          suffix: str) -> None:
    rng = np.random.default_rng(4)
    masks = rng.random((6, CATALOG.n_arms)) < 0.3
    masks[:, [CATALOG.arm("email", 9), CATALOG.null_arm]] = True  # the logged arms of ``record``
    rows = [record(f"d-{i}", send_at=None, channel="none" if i % 2 else "email", allowed=CATALOG.encode_mask(mask),
                   support=int(mask.sum()), epsilon=0.05 * i) for i, mask in enumerate(masks)]
    rows.append(record("d-old", send_at=None))  # logged before masks were recorded
    with store.transaction() as tx:
        tx.add_decisions(rows)
        tx.register_model(VERSION, CATALOG.to_dict(), {"click": 1.0, "unsubscribe": -2.0})
    with store.transaction() as tx:
        assert tx.decisions(["d-2", "d-old"]) == {"d-2": rows[2], "d-old": rows[-1]}
    closed, _ = store.closed_decisions()
    assert {d.decision_id: d for d in closed} == {d.decision_id: d for d in rows}
    log = read_logs(write_logs(decision_log(store), tmp_path / f"log{suffix}"), CATALOG)
    at = {d: i for i, d in enumerate(log.decision_id.tolist())}
    order = [at[d.decision_id] for d in rows]
    np.testing.assert_array_equal(log.allowed[order[:-1]], masks)
    assert log.allowed[order[-1]].all()  # not recorded: every arm counts as allowed
    np.testing.assert_array_equal(log.support_size[order], [*masks.sum(axis=1), np.nan])
    np.testing.assert_array_equal(log.epsilon[order], [0.05 * i for i in range(6)] + [np.nan])


@on_every_store
def test_the_input_log_replays_commits_in_order_grouped_by_transaction(store: Store) -> None:
    inputs = [loop_input(InputKind.ARRIVED, 1, 2, CLICK, 1.0, 0.0),
              loop_input(InputKind.CLOSED, 1, 2, UNSUBSCRIBE, 0.0, 1.0),
              loop_input(InputKind.SENT, 3, 4, -1, 0.0, 0.0, customer="p-1"),
              loop_input(InputKind.TICK, -1, -1, -1, 0.0, 0.0, at=470_001.0 + 1 / 3)]
    for version, group in ((VERSION, inputs[:2]), ("v2", inputs[2:3]), (VERSION, inputs[3:])):
        with store.transaction() as tx:
            tx.log_inputs(version, group)
            tx.log_inputs(version, [])  # nothing to learn: nothing logged
    rows = store.input_log(VERSION, 0)
    assert [r.input for r in rows] == [inputs[0], inputs[1], inputs[3]]  # floats and strings round-trip exactly
    assert [r.seq for r in rows] == sorted({r.seq for r in rows})
    assert rows[0].txn == rows[1].txn != rows[2].txn
    assert store.input_log(VERSION, rows[1].seq) == rows[2:]
    assert [r.input for r in store.input_log("v2", 0)] == [inputs[2]]


@on_every_store
def test_erasure_counts_and_removes_only_the_customers_rows(store: Store) -> None:
    with store.transaction(durable=False) as tx:
        tx.add_decisions([record("d-1"), record("d-2", send_at=None, channel="none"), record("d-3", customer="p-2")])
    with store.transaction() as tx:
        tx.add_events([event_record("e-1", "d-1"), event_record("e-3", "d-3", customer="p-2"),
                       event_record("e-orphan", "d-x", customer=None)])
        tx.set_consent("p-1", "email", True, 5.0)
    with store.transaction() as tx:
        assert tx.erase_customer("p-1") == Erasure(decisions=2, events=1, channel_states=1)
    with store.transaction() as tx:
        assert tx.erase_customer("p-1") == Erasure(0, 0, 0)
        assert set(tx.decisions(["d-1", "d-2", "d-3"])) == {"d-3"}
        assert set(tx.event_hashes(["e-1", "e-3", "e-orphan"])) == {"e-3", "e-orphan"}
    with store.transaction(durable=False) as tx:
        assert tx.unsubscribed_channels(["p-1"]) == {} and tx.sends_since(["p-1"], 0.0) == {}
    assert store.closed_decisions()[0] == [] and store.open_decisions() == 1


# --- Redis only -------------------------------------------------------------------------------------------


def test_another_worker_sees_deltas_within_the_snapshot_interval(redis_url: str, tmp_path: Path) -> None:
    writer, reader = redis_store(redis_url, tmp_path / "a"), redis_store(redis_url, tmp_path / "b",
                                                                          snapshot_seconds=1.0)
    try:
        assert reader.input_log(VERSION, 0) == []
        with writer.transaction() as tx:
            tx.log_inputs(VERSION, [loop_input(InputKind.ARRIVED, 0, 1, CLICK, 1.0, 0.0)])
        assert [r.input.arm for r in writer.input_log(VERSION, 0)] == [1]  # its own commit, at once
        assert reader.input_log(VERSION, 0) == []  # a model that has read up to 0 is served from the snapshot
        time.sleep(1.05)
        assert [r.input.arm for r in reader.input_log(VERSION, 0)] == [1]
    finally:
        writer.close()
        reader.close()


def test_locks_serialise_writers_and_closing_skips_what_another_transaction_holds(redis_url: str,
                                                                                  tmp_path: Path) -> None:
    store = redis_store(redis_url, tmp_path)
    with store.transaction(durable=False) as tx:
        tx.add_decisions([record("d-1"), record("d-2", send_at=1010.0)])
    seen: list[str] = []

    def second_writer() -> None:
        with store.transaction() as tx:
            seen.append(tx.decisions(["d-1"])["d-1"].delivery)

    try:
        with store.transaction() as holder:
            holder.update_decisions([replace(holder.decisions(["d-1"])["d-1"], delivery="delivered")])
            with store.transaction() as closer:
                assert [d.decision_id for d in closer.due_decisions(5000.0, 10)] == ["d-2"]
            waiting = threading.Thread(target=second_writer)
            waiting.start()
            time.sleep(0.2)
            assert not seen  # still waiting for the holder's lock
        waiting.join(timeout=5)
        assert seen == ["delivered"]  # ran after the holder committed
    finally:
        store.close()


def test_a_commit_after_an_opt_out_of_a_customer_it_read_writes_nothing_and_says_so(redis_url: str,
                                                                                 tmp_path: Path) -> None:
    store = redis_store(redis_url, tmp_path)
    try:
        with pytest.raises(StaleReadError), store.transaction(durable=False) as decision:
            assert decision.customer_state(["p-1", "p-2"], 60.0, dict).blocked == {}
            with store.transaction() as feedback:  # consent takes the consent lock, not the customer's
                feedback.set_consent("p-2", "email", True, 10.0)
            decision.add_decisions([record("d-1", customer="p-1")])
        with store.transaction(durable=False) as decision:
            assert decision.customer_state(["p-1", "p-2"], 60.0, dict) == ({"p-2": {"email"}}, {})
            assert decision.decisions(["d-1"]) == {}  # the stale commit wrote nothing
            decision.add_decisions([record("d-1", customer="p-1")])
        with store.transaction() as tx:
            assert set(tx.decisions(["d-1"])) == {"d-1"}
    finally:
        store.close()


@on_redis
def test_redis_weaker_than_asked_refuses_to_start(redis_server: RedisServer, redis_url: str,
                                                   make_settings: Callable[..., Settings], clock: Clock) -> None:
    redis = redis_server.client()
    try:
        redis.config_set("appendfsync", "everysec")
        with pytest.raises(RuntimeError, match="appendfsync=everysec, weaker than SENDWISE_REDIS_DURABILITY='always'"):
            open_store(make_settings(redis_durability="always"))
        open_store(make_settings(redis_durability="everysec")).close()
        redis.config_set("appendonly", "no")
        with pytest.raises(RuntimeError, match="appendonly=no"), serve(make_settings(redis_durability="everysec"),
                                                                       clock):
            pass
        open_store(make_settings(redis_durability="none")).close()
    finally:
        redis.config_set("appendonly", "yes")
        redis.config_set("appendfsync", "always")


def test_state_url_schemes_and_a_missing_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://cache.internal:6380/2", "sqlite:///state.db"):
        assert Settings(state_url=url).state_url == url
    with pytest.raises(ValueError, match="must start with 'sqlite:///', 'redis://' or 'rediss://'"):
        Settings(state_url="postgres://db/sendwise")
    with pytest.raises(ValueError, match="the state is in Redis"):
        _ = Settings(state_url="redis://127.0.0.1:6379/0").state_path
    monkeypatch.setitem(sys.modules, "redis", None)  # as if the extra were not installed
    with pytest.raises(ImportError, match=r"pip install 'sendwise\[redis\]'"):
        open_store(Settings(state_url="redis://127.0.0.1:6379/0"))


# --- B3: idempotency in Redis mode --------------------------------------------------------------------------

EVENT_TYPES = ("clicked", "converted", "unsubscribed", "opened", "delivered")
OUTCOME = {"clicked": CLICK, "converted": CLICK, "unsubscribed": UNSUBSCRIBE}


@on_redis
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_order_and_multiplicity_of_events_learns_the_fold_of_the_distinct_ones(
        client: TestClient, clock: Clock, data: st.DataObject) -> None:
    """posterior(S) == posterior(dedup(S)) == posterior(S ++ S) == posterior(shuffle(S)), on Redis."""
    example = f"x{time.monotonic_ns()}"
    decisions = decide(client, *(customer(f"{example}-{i}", channels=["email", "push"]) for i in range(4)))
    clock.now = max([clock.now, *(datetime.fromisoformat(d["send_at"]) + timedelta(minutes=1)
                                  for d in decisions if d["send_at"])])
    distinct = data.draw(st.lists(st.tuples(st.integers(0, 3), st.sampled_from(EVENT_TYPES)), min_size=1,
                                  max_size=12, unique=True))
    events = [event(decisions[i], kind, f"{example}-{i}-{kind}", clock.now) for i, kind in distinct]
    stream = data.draw(st.permutations(events + data.draw(st.lists(st.sampled_from(events), max_size=6))))
    cuts = sorted(data.draw(st.lists(st.integers(1, len(stream)), max_size=3)))
    alpha0, beta0 = posterior(client)
    for start, stop in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        if start < stop:
            assert client.post("/v1/feedback", json={"events": stream[start:stop]}).status_code == 200
    expected = alpha0.copy()
    cell = CATALOG.cell("NA", "ecommerce", "broadcast")
    for i, outcome in {(i, OUTCOME[kind]) for i, kind in distinct if kind in OUTCOME}:
        if decisions[i]["channel"] != "none":
            expected[cell, outcome, CATALOG.arm(decisions[i]["channel"], decisions[i]["local_hour"])] += 1
    alpha1, beta1 = posterior(client)
    np.testing.assert_array_equal(alpha1, expected)
    np.testing.assert_array_equal(beta1, beta0)
    response = client.post("/v1/feedback", json={"events": stream})  # S ++ S: all duplicates
    assert {r["status"] for r in response.json()["results"]} == {"duplicate"}
    np.testing.assert_array_equal(posterior(client)[0], expected)
