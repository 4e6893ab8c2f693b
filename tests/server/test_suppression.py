"""B8: erasure keeps opt-outs as keyed hashes on a suppression list, on SQLite and on Redis.

``DELETE /v1/customers/{id}`` removes the customer's decisions, events and channel states; an opt-out
in force stays behind as an entry keyed by HMAC(pepper, pseudonym, channel), so the same id does not
get the channel again, until a consent that is unambiguously later than the opt-out.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sendwise.server.consent import ConsentState
from sendwise.server.store import SQLiteStore
from tests.server.test_consent_order import BLOCKED_EMAIL, email_allowed
from tests.support.api import customer, decide, event, feedback
from tests.support.app import Clock
from tests.support.redis import redis_store
from tests.support.stores import on_every_store


def _unsubscribe_then_erase(client: TestClient, clock: Clock, customer_id: str) -> dict:
    (decision,) = decide(client, customer(customer_id, channels=["email", "push"]))
    assert feedback(client, event(decision, "unsubscribed", "u-1", clock.now, channel="email")) == ["applied"]
    assert not email_allowed(client, customer_id)
    response = client.delete(f"/v1/customers/{customer_id}")
    assert response.status_code == 200 and response.json()["channel_states_deleted"] == 1
    return decision


@on_every_store
def test_an_erased_customer_stays_opted_out_until_an_unambiguously_later_consent(client: TestClient,
                                                                                 clock: Clock) -> None:
    opted_out_at = clock.now
    _unsubscribe_then_erase(client, clock, "c-erased")
    assert not email_allowed(client, "c-erased")  # the same id: email stays blocked
    assert email_allowed(client, "c-other")
    (decision,) = decide(client, customer("c-erased", channels=["push"]))
    clock.advance(minutes=4)
    assert feedback(client, event(decision, "consent", "k-1", opted_out_at + timedelta(minutes=5),
                                  channel="email")) == ["applied"]
    assert not email_allowed(client, "c-erased")  # 5 minutes after the opt-out: within the skew
    clock.advance(minutes=10)
    assert feedback(client, event(decision, "consent", "k-2", clock.now, channel="email")) == ["applied"]
    assert email_allowed(client, "c-erased")
    erased = client.delete("/v1/customers/c-erased").json()
    assert erased["channel_states_deleted"] == 1  # the consent state; no opt-out is left to keep
    assert email_allowed(client, "c-erased")


@on_every_store
def test_an_opt_out_after_coming_back_is_kept_by_a_second_erasure(client: TestClient, clock: Clock) -> None:
    _unsubscribe_then_erase(client, clock, "c-back")
    (decision,) = decide(client, customer("c-back", channels=["push"]))
    clock.advance(hours=1)
    assert feedback(client, event(decision, "consent", "k-1", clock.now, channel="email")) == ["applied"]
    assert email_allowed(client, "c-back")
    clock.advance(hours=1)
    assert feedback(client, event(decision, "unsubscribed", "u-2", clock.now, channel="email")) in (["applied"],
                                                                                                    ["late"])
    assert client.delete("/v1/customers/c-back").status_code == 200
    assert not email_allowed(client, "c-back")
    assert client.delete("/v1/customers/c-back").json()["channel_states_deleted"] == 0


@on_every_store
def test_the_list_names_neither_the_customer_nor_its_pseudonym(client: TestClient, clock: Clock) -> None:
    _unsubscribe_then_erase(client, clock, "c-private")
    service = client.app.state.service
    pseudonym = service.pseudonymize("c-private")
    key = service.pseudonymize.suppression_key(pseudonym, "email")
    assert len(key) == 64 and key != pseudonym
    with service.store.snapshot() as view:
        assert view.suppressed([key, service.pseudonymize.suppression_key(pseudonym, "push")]) == {key}
    if client.app.state.settings.redis_url is None:
        with sqlite3.connect(client.app.state.settings.state_path) as conn:
            dump = "\n".join(conn.iterdump())
    else:
        dump = "\n".join(_redis_contents(service.store.redis))
    assert key in dump
    assert "c-private" not in dump and pseudonym not in dump


@on_every_store
def test_a_batch_blocks_the_erased_and_the_opted_out_among_new_customers(client: TestClient, clock: Clock,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    keyed: list[tuple[str, str]] = []
    service = client.app.state.service
    key_of = service.pseudonymize.suppression_key
    monkeypatch.setattr(service.pseudonymize, "suppression_key", lambda *pair: keyed.append(pair) or key_of(*pair))
    (opted,) = decide(client, customer("c-opted", channels=["email", "push"]))
    assert feedback(client, event(opted, "unsubscribed", "u-opted", clock.now, channel="email")) == ["applied"]
    assert keyed == []  # an empty suppression list: no key is made
    _unsubscribe_then_erase(client, clock, "c-erased")
    keyed.clear()  # the erasure made the key of the opt-out it keeps
    batch = [customer(f"c-new-{i}", channels=["email", "push"]) for i in range(30)]
    batch[7], batch[19] = customer("c-erased", channels=["email", "push"]), customer("c-opted", channels=["email"])
    decisions = decide(client, *batch)
    blocked = {d["customer_id"] for d in decisions if BLOCKED_EMAIL in d["reason"]["guardrails"]}
    assert blocked == {"c-erased", "c-opted"}
    assert all(d["channel"] != "email" for d in decisions if d["customer_id"] in blocked)
    assert len(keyed) == 2 * 29 + 1  # the list holds an entry: one key per customer and requested channel


def _redis_contents(redis: Any) -> Iterator[str]:
    """Every key of the Redis database with what it holds, as text."""
    read = {"hash": redis.hgetall, "set": redis.smembers, "string": redis.get,
            "zset": lambda k: redis.zrange(k, 0, -1), "stream": lambda k: redis.xrange(k)}
    for key in redis.scan_iter():
        yield f"{key} {read[redis.type(key)](key)}"


def test_a_database_from_before_the_list_gets_it_on_open(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "state.db")
    with store.transaction() as tx:
        tx.set_consent("p-1", "email", True, 5.0)
    store.close()
    with sqlite3.connect(tmp_path / "state.db") as conn:
        conn.execute("DROP TABLE suppression")
    store = SQLiteStore(tmp_path / "state.db")
    try:
        with store.transaction() as tx:  # an opt-out recorded before the upgrade still moves to the list
            assert tx.opt_outs("p-1") == {"email": 5.0}
            tx.update_suppression("p-1", "k-email", ConsentState(True, 5.0))
            tx.erase_customer("p-1")
        with store.snapshot() as view:
            assert view.suppressed(["k-email", "k-push"]) == {"k-email"}
        with store.transaction() as tx:
            tx.update_suppression("p-1", "k-email", ConsentState(False, 305.0))  # within the skew: stays
        with store.snapshot() as view:
            assert view.suppressed(["k-email"]) == {"k-email"}
    finally:
        store.close()


def test_a_redis_worker_started_after_the_erasure_has_the_list_for_an_outage(redis_url: str,
                                                                             tmp_path: Path) -> None:
    writer = redis_store(redis_url, tmp_path / "a")
    try:
        with writer.transaction() as tx:
            tx.set_consent("p-1", "email", True, 5.0)
        with writer.transaction() as tx:
            tx.update_suppression("p-1", "k-email", ConsentState(True, tx.opt_outs("p-1")["email"]))
            tx.erase_customer("p-1")
        late_starter = redis_store(redis_url, tmp_path / "b")
        try:  # what offline decisions read while Redis is away: the replica built at start
            assert late_starter.replica_suppressed(["k-email", "k-push"]) == {"k-email"}
            assert late_starter.replica_unsubscribed(["p-1"]) == {}
        finally:
            late_starter.close()
        assert writer.replica_suppressed(["k-email"]) == {"k-email"}
    finally:
        writer.close()


@on_every_store
def test_an_erasure_leaves_no_pseudonym_in_the_store_files(client: TestClient, clock: Clock,
                                                           request: pytest.FixtureRequest) -> None:
    """Not in the database's free pages, its WAL, or Redis's append-only file (rewritten after the erasure)."""
    service = client.app.state.service
    pseudonym = service.pseudonymize("c-gone").encode()
    decisions = [decide(client, customer("c-gone"))[0] for _ in range(5)]
    assert feedback(client, *(event(d, "opened", f"o-{i}", clock.now) for i, d in enumerate(decisions)))
    assert pseudonym in b"".join(_store_files(client, request))  # it was on disk before
    assert client.delete("/v1/customers/c-gone").status_code == 200
    assert pseudonym not in b"".join(_store_files(client, request))


def _store_files(client: TestClient, request: pytest.FixtureRequest) -> Iterator[bytes]:
    """The bytes of every file the store keeps: the SQLite database and its WAL, or Redis's AOF (once the
    background rewrite an erasure asks for has finished)."""
    settings = client.app.state.settings
    if settings.redis_url is None:
        folder, name = settings.state_path.parent, settings.state_path.name
        yield from (path.read_bytes() for path in folder.glob(f"{name}*"))
        return
    server = request.getfixturevalue("redis_server")
    redis = server.client()
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        info = redis.info("persistence")
        if not (info["aof_rewrite_in_progress"] or info["aof_rewrite_scheduled"]):
            break
        time.sleep(0.05)
    yield from (path.read_bytes() for path in (server.folder / "appendonlydir").iterdir())
