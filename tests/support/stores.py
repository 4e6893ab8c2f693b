"""State stores under test: every test that holds for any store runs on SQLite and on Redis.

A test opts in with ``@on_every_store``: it then runs once per entry of ``STORES``, and the fixtures
built on ``store_kind`` follow — ``store`` (an empty store opened directly) and the server tests'
``make_settings`` and ``client`` (an app whose state is in that store). Without the mark a test's
state is in SQLite. The Redis entry uses the session's ``redis-server`` (emptied per test) and is
skipped, saying why, when Redis is missing. Rows for the store contract are built here too.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from sendwise.server.store import DecisionRecord, EventRecord, InputKind, LoopInput, SQLiteStore, Store

from .catalogs import CATALOG
from .redis import redis_store

STORES = ["sqlite", "redis"]
on_every_store = pytest.mark.parametrize("store_kind", STORES, indirect=True)
on_redis = pytest.mark.parametrize("store_kind", ["redis"], indirect=True)

CLICK, UNSUBSCRIBE = CATALOG.outcomes.index("click"), CATALOG.outcomes.index("unsubscribe")
VERSION = "v1"


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which store holds the test's state: "sqlite" unless ``on_every_store`` or ``on_redis`` says otherwise."""
    return getattr(request, "param", "sqlite")


@pytest.fixture
def store_settings(store_kind: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """``Settings`` fields that put a server's state in the test's store (none for SQLite in the state folder)."""
    if store_kind == "sqlite":
        return {}
    return {"state_url": request.getfixturevalue("redis_url"), "redis_durability": "always"}


@pytest.fixture
def store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    """The test's store, empty, opened directly (the store contract tests)."""
    opened = (SQLiteStore(tmp_path / "state.db") if store_kind == "sqlite"
              else redis_store(request.getfixturevalue("redis_url"), tmp_path))
    yield opened
    opened.close()


def record(decision_id: str, customer: str = "p-1", channel: str = "email", send_at: float | None = 1000.0,
           **fields: Any) -> DecisionRecord:
    """A decision log row in ``CATALOG`` (NA, ecommerce, broadcast); its window closes 100 s after sending."""
    hour = None if channel == "none" else 9
    values: dict[str, Any] = dict(
        decision_id=decision_id, customer=customer, created_at=(send_at or 600.0) - 500.0, region="NA",
        industry="ecommerce", campaign_type="broadcast", lifecycle_stage=None, timezone="UTC", channel=channel,
        local_hour=hour, send_at=send_at, arm=CATALOG.arm(channel, hour or 0),
        cell=CATALOG.cell("NA", "ecommerce", "broadcast"), propensity=0.25, explored=False, cost=0.001, seed=7,
        row=0, model_version=VERSION, reason="{}", window_closes_at=None if send_at is None else send_at + 100.0,
        closed=send_at is None)
    return DecisionRecord(**values | fields)


def event_record(event_id: str, decision_id: str, customer: str | None = "p-1") -> EventRecord:
    """An applied click of ``customer`` on ``decision_id``."""
    return EventRecord(event_id=event_id, payload_hash=f"hash-{event_id}", decision_id=decision_id,
                       customer=customer, type="clicked", timestamp=1000.0, value=None, channel=None,
                       status="applied", received_at=1001.0)


def loop_input(kind: InputKind, cell: int, arm: int, outcome: int, successes: float, failures: float,
               at: float = 470_000.5, customer: str = "") -> LoopInput:
    """One row of the learning loop's input log."""
    return LoopInput(int(kind), f"d-{cell}-{arm}", cell, arm, outcome, successes, failures, 470_000.25, at, customer)


@contextmanager
def writer_holding_the_lock(state: Store, write: Callable[[Any], None]) -> Iterator[None]:
    """Inside: another thread holds an open write transaction (the store's lock and SQLite's write lock)."""
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with state.transaction() as tx:
            write(tx)
            holding.set()
            release.wait(timeout=10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert holding.wait(timeout=10)
        yield
    finally:
        release.set()
        thread.join(timeout=10)
