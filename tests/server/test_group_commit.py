"""Group commit: concurrent durable units share commits, each unit stays all-or-nothing on its own, a
unit never taken into a commit is withdrawn at its deadline, and the WAL is checkpointed off the request.

The sharing is checked on the ``GroupCommit`` itself (a commit held open on purpose, so the overlap
is certain) and on a real SQLite store under real threads; ``durable_unit`` keeps its contract on
every store.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sendwise.server.deadline import deadline_after
from sendwise.server.group_commit import GroupCommit
from sendwise.server.store import InputKind, SQLiteStore, Store, StoreUnavailableError, Transaction
from tests.support.api import customer, decide, event
from tests.support.app import Clock
from tests.support.stores import VERSION, event_record, loop_input, on_every_store, record


class HeldCommits:
    """A ``commit_group`` that runs each work on a fake transaction and holds the first commit until released."""

    def __init__(self) -> None:
        self.groups: list[list[int]] = []
        self.entered, self.release = threading.Event(), threading.Event()

    def __call__(self, works: Any) -> list[Any]:
        self.entered.set()
        self.release.wait(timeout=10)
        outcomes: list[Any] = []
        for work in works:
            try:
                outcomes.append(work(None))
            except Exception as exc:  # noqa: BLE001 - the unit's own error goes back to it
                outcomes.append(exc)
        self.groups.append([o for o in outcomes if isinstance(o, int)])
        return outcomes


def wait_until(condition: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.005)


def test_units_queued_behind_a_commit_share_the_next_one_and_each_gets_its_own_result() -> None:
    commits = HeldCommits()
    group = GroupCommit(commits, patience_seconds=10.0, busy_error=StoreUnavailableError)

    def failing(_: object) -> int:
        raise ValueError("unit 3 is refused")

    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(group.run, lambda _: 0)
        commits.entered.wait(timeout=5)
        followers = {i: pool.submit(group.run, failing if i == 3 else (lambda _, i=i: i)) for i in range(1, 6)}
        wait_until(lambda: len(group._queue) == 5)
        commits.release.set()
        assert first.result(timeout=5) == 0
        for i, future in followers.items():
            if i == 3:
                with pytest.raises(ValueError, match="unit 3"):
                    future.result(timeout=5)
            else:
                assert future.result(timeout=5) == i
    assert commits.groups == [[0], [1, 2, 4, 5]]
    assert (group.commits, group.units) == (2, 6)


def test_a_unit_still_queued_at_its_deadline_is_withdrawn_and_never_runs() -> None:
    commits = HeldCommits()
    group = GroupCommit(commits, patience_seconds=10.0, busy_error=StoreUnavailableError)
    ran: list[str] = []
    with ThreadPoolExecutor(1) as pool:
        leader = pool.submit(group.run, lambda _: ran.append("leader"))
        commits.entered.wait(timeout=5)
        with deadline_after(0.05), pytest.raises(StoreUnavailableError, match="retry"):
            group.run(lambda _: ran.append("withdrawn"))
        commits.release.set()
        leader.result(timeout=5)
    assert ran == ["leader"] and not group._queue


def test_a_commit_that_fails_fails_every_unit_it_held() -> None:
    def broken(works: Any) -> list[Any]:
        raise sqlite3.OperationalError("disk I/O error")

    group = GroupCommit(broken, patience_seconds=1.0, busy_error=StoreUnavailableError)
    with pytest.raises(sqlite3.OperationalError, match="disk"):
        group.run(lambda _: 1)
    assert not group._leading  # the next unit leads again
    with pytest.raises(sqlite3.OperationalError):
        group.run(lambda _: 2)


@on_every_store
def test_a_durable_unit_is_all_or_nothing_among_concurrent_ones(store: Store) -> None:
    with store.transaction() as tx:
        tx.add_decisions([record(f"d-{i}", customer=f"p-{i}") for i in range(16)])

    def unit(i: int) -> str:
        def work(tx: Transaction) -> str:
            tx.add_events([event_record(f"e-{i}", f"d-{i}", customer=f"p-{i}")])
            tx.log_inputs(VERSION, [loop_input(InputKind.ARRIVED, 0, 0, 0, 1.0, 0.0)])
            if i % 5 == 0:
                raise ValueError(f"unit {i} refused")
            return f"e-{i}"
        return store.durable_unit(work)

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(unit, i) for i in range(16)]
        outcomes = [f.exception() or f.result() for f in futures]
    kept = [f"e-{i}" for i in range(16) if i % 5]
    assert [o for o in outcomes if isinstance(o, str)] == kept
    assert all(isinstance(outcomes[i], ValueError) for i in range(0, 16, 5))
    with store.transaction() as tx:
        assert sorted(tx.event_hashes({f"e-{i}": "" for i in range(16)})) == sorted(kept)
    assert len(store.input_log(VERSION, 0, fresh=True)) == len(kept)


def test_concurrent_feedback_units_on_sqlite_share_commits(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    try:
        def unit(i: int) -> None:
            def work(tx: Transaction) -> None:
                tx.log_inputs(VERSION, [loop_input(InputKind.ARRIVED, 0, 0, 0, 1.0, 0.0)])
            store.durable_unit(work)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(unit, range(400)))
        group = store.group_commit
        assert group.units == 400 and len(store.input_log(VERSION, 0)) == 400
        assert group.commits < group.units, "eight writers never once shared a commit"
    finally:
        store.close()


def test_maintain_copies_committed_writes_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = SQLiteStore(path)

    def rows_in_the_database_file() -> int:
        """What the main file holds by itself: ``immutable`` reads it and ignores the WAL."""
        with sqlite3.connect(f"file:{path}?immutable=1", uri=True) as conn:
            try:
                return int(conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0])
            except sqlite3.OperationalError:  # not even the schema is checkpointed yet
                return 0

    try:
        with store.transaction() as tx:
            tx.add_decisions([record(f"d-{i}", customer=f"p-{i}") for i in range(50)])
        assert rows_in_the_database_file() == 0, "a commit checkpointed by itself"
        store.maintain()
        assert rows_in_the_database_file() == 50
    finally:
        store.close()


def test_metrics_count_the_durable_units_and_the_commits_that_held_them(client: TestClient, clock: Clock) -> None:
    (decision,) = decide(client, customer())
    for i in range(3):
        response = client.post("/v1/feedback", json={"events": [event(decision, "opened", f"o-{i}", clock.now)]})
        assert response.status_code == 200
    values = {line.split()[0]: float(line.split()[1]) for line in client.get("/metrics").text.splitlines()
              if line.startswith(("sendwise_durable_units ", "sendwise_durable_commits "))}
    assert values == {"sendwise_durable_units": 3.0, "sendwise_durable_commits": 3.0}  # one client: nothing to share
