"""Rate limits: requests and decided customers per API key, failed dashboard sign-ins per client address.

Every limit is counted in the store, so two apps on one store share it; the tests' clock moves the
window along.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sendwise.server import Settings
from sendwise.server.store import SQLiteStore, Store, StoreUnavailableError
from tests.support.api import customer
from tests.support.app import API_KEY, DECIDE_KEY, Clock, serve
from tests.support.stores import on_every_store

ONE = {"customers": [customer()]}
ANONYMOUS = {"Authorization": ""}


def decide_status(client: TestClient, n_customers: int = 1, **headers: str) -> int:
    body = {"customers": [customer(f"c-{n}") for n in range(n_customers)]}
    return client.post("/v1/decisions", json=body, headers=headers).status_code


@on_every_store
def test_requests_past_the_limit_get_429_with_retry_after_until_the_window_ends(
        make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(make_settings(rate_limit_requests_per_minute=3), clock) as client:
        assert [decide_status(client) for _ in range(3)] == [200] * 3  # one count per request
        clock.advance(seconds=20)
        refused = client.post("/v1/decisions", json=ONE)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "40"  # the window is the minute from START (12:00:00)
        assert client.delete("/v1/customers/c-1").status_code == 429  # every route of the key
        assert decide_status(client, **{"Authorization": "", "X-API-Key": DECIDE_KEY}) == 200  # another key
        clock.advance(seconds=40)
        assert decide_status(client) == 200


@on_every_store
def test_decided_customers_are_counted_per_key(make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(make_settings(rate_limit_decisions_per_minute=5), clock) as client:
        assert decide_status(client, 3) == 200
        response = client.post("/v1/decisions", json={"customers": [customer(f"d-{n}") for n in range(3)]})
        assert response.status_code == 429 and int(response.headers["retry-after"]) == 60
        clock.advance(minutes=1)
        assert decide_status(client, 5) == 200


@on_every_store
def test_two_apps_on_one_store_share_the_count(make_settings: Callable[..., Settings], clock: Clock) -> None:
    settings = make_settings(rate_limit_requests_per_minute=4)
    with serve(settings, clock) as first, serve(settings, clock) as second:
        assert [decide_status(app) for app in (first, second, first, second)] == [200] * 4
        assert decide_status(first) == 429
        assert decide_status(second) == 429


@on_every_store
def test_failed_sign_ins_per_address_get_429_until_the_window_ends(
        make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(make_settings(), clock, headers=ANONYMOUS) as client:
        assert client.post("/dashboard/login", json={"api_key": API_KEY}).status_code == 204  # not counted
        assert client.post("/dashboard/login", json={"api_key": DECIDE_KEY}).status_code == 403  # a real key
        for _ in range(10):
            assert client.post("/dashboard/login", json={"api_key": "wrong-key-0123456789"}).status_code == 401
        refused = client.post("/dashboard/login", json={"api_key": API_KEY})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "900"
        clock.advance(minutes=15)
        assert client.post("/dashboard/login", json={"api_key": API_KEY}).status_code == 204


def test_limits_are_off_unless_set_except_failed_sign_ins(client: TestClient) -> None:
    assert [decide_status(client, 1000) for _ in range(3)] == [200] * 3
    settings: Settings = client.app.state.settings
    assert (settings.rate_limit_requests_per_minute, settings.rate_limit_decisions_per_minute) == (None, None)
    assert (settings.rate_limit_sign_in_failures, settings.rate_limit_sign_in_window_seconds) == (10, 900.0)


def test_counters_hold_keyed_hashes_only(make_settings: Callable[..., Settings], clock: Clock,
                                         tmp_path: Path) -> None:
    settings = make_settings(rate_limit_requests_per_minute=10)
    with serve(settings, clock) as client:
        assert decide_status(client) == 200
        client.post("/dashboard/login", json={"api_key": "wrong-key-0123456789"}, headers=ANONYMOUS)
    with sqlite3.connect(settings.state_path) as conn:
        keys = [key for (key,) in conn.execute("SELECT key FROM rate_counts")]
    assert len(keys) == 2 and all(len(key) == 64 and int(key, 16) >= 0 for key in keys)
    assert not any(secret in key for key in keys for secret in (API_KEY, "testclient"))


def test_a_store_that_cannot_count_lets_requests_through(make_settings: Callable[..., Settings], clock: Clock,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def unavailable(*args: object) -> int:
        raise StoreUnavailableError("busy")

    with serve(make_settings(rate_limit_requests_per_minute=1), clock) as client:
        monkeypatch.setattr(client.app.state.rate_limiter._store, "add_hits", unavailable)
        assert [decide_status(client) for _ in range(3)] == [200] * 3


@on_every_store
def test_a_later_window_restarts_the_count_and_an_earlier_one_adds_to_it(store: Store) -> None:
    assert [store.add_hits("k", n, 120.0, 60.0) for n in (1, 2)] == [1, 3]
    assert store.add_hits("other", 5, 120.0, 60.0) == 5
    assert store.add_hits("k", 1, 180.0, 60.0) == 1
    if isinstance(store, SQLiteStore):  # a worker whose clock lags a little counts into the newer window
        assert store.add_hits("k", 1, 120.0, 60.0) == 2


def test_a_database_without_the_counter_table_gets_it_on_open(tmp_path: Path) -> None:
    SQLiteStore(tmp_path / "state.db").close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("DROP TABLE rate_counts")
    store = SQLiteStore(tmp_path / "state.db")
    assert store.add_hits("k", 1, 0.0, 60.0) == 1
    store.close()
