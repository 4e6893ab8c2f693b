"""Redis mode end to end: B9 with four server processes, B2 with redis-server killed mid-load, an outage.

- B9: four uvicorn processes share one Redis; eight writers post every event twice across them; the
  state equals the sequential fold.
- B2: under feedback load on a real server, ``redis-server`` (``appendfsync always``) is killed with
  SIGKILL and restarted on the same folder; while it is down feedback is 503 (never a 2xx) and
  decisions go on; after it is back every retry succeeds, nothing acknowledged is missing and the
  posterior is exactly the fold over the stored events.
- An outage in one app: decisions made while Redis is down honour earlier unsubscribes, are logged
  once Redis is back (also when their worker stopped meanwhile), and their feedback then applies.

Redis servers come from ``tests.support.redis`` (each test starts its own and stops it by pid).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from sendwise.server.store import Store
from tests.support.api import decide, event, seed_customer
from tests.support.app import E2E_AUTH, app_client
from tests.support.fold import Placed, base_posterior, decide_and_place, reference_successes, served_posterior
from tests.support.live import ServerFactory
from tests.support.load import post_until_stopped, same_arm_customers, write_concurrently
from tests.support.redis import RedisServer, redis_store

SNAPSHOT_SECONDS = 0.2  # also how soon a server tries Redis again after a failure
KILL_CYCLES = 3
N_CUSTOMERS = 100
N_EVENTS = 400  # at 500 events/s: the kill and the restart land mid-stream
RETRY_DEADLINE_S = 15.0
EVENT_TYPES = ("clicked", "converted", "opened", "delivered", "unsubscribed")


def redis_settings(redis: RedisServer) -> dict[str, Any]:
    return {"state_url": redis.url, "redis_durability": "always", "snapshot_seconds": SNAPSHOT_SECONDS}


def stored_event_ids(store: Store, event_ids: list[str]) -> set[str]:
    with store.transaction() as tx:
        return set(tx.event_hashes(event_ids))


def feedback_poster(client: httpx.Client) -> Callable[[list[dict[str, Any]]], httpx.Response]:
    return lambda batch: client.post("/v1/feedback", json={"events": batch})


def post_until_2xx(http: httpx.Client, path: str, body: dict[str, Any]) -> httpx.Response:
    """Post until a 2xx, as a client retrying on 503 does; fail on anything else or after the deadline."""
    deadline = time.monotonic() + RETRY_DEADLINE_S
    while True:
        response = http.post(path, json=body)
        if response.is_success:
            return response
        assert response.status_code == 503 and response.headers["Retry-After"], response.text
        assert time.monotonic() < deadline, f"still 503 after {RETRY_DEADLINE_S} s: {response.text}"
        time.sleep(0.05)


def test_four_processes_on_one_redis_lose_no_update(servers: ServerFactory, redis: RedisServer,
                                                    tmp_path: Path) -> None:
    state = tmp_path / "state"
    workers = [servers.start(state, **redis_settings(redis)) for _ in range(4)]
    clients = [httpx.Client(base_url=w.url, headers=E2E_AUTH, timeout=30.0) for w in workers]
    try:
        decisions, placed = decide_and_place(clients[0], same_arm_customers("r"))
        events = write_concurrently([feedback_poster(c) for c in clients], decisions)
    finally:
        for client in clients:
            client.close()
        for worker in workers:
            worker.stop()
    base_alpha, base_beta = base_posterior()
    alpha, beta = served_posterior(state, **redis_settings(redis))
    assert np.array_equal(alpha, base_alpha + reference_successes(placed, events)), \
        "the posterior in Redis lost or doubled an update"
    assert np.array_equal(beta, base_beta), "no window closed, yet beta changed"


def test_acknowledged_feedback_survives_kill_9_of_redis(servers: ServerFactory, redis: RedisServer,
                                                        tmp_path: Path) -> None:
    rng, state = np.random.default_rng(), tmp_path / "state"  # the kill timing is random anyway
    server = servers.start(state, **redis_settings(redis))
    placed: dict[str, Placed] = {}
    all_events: list[dict[str, Any]] = []
    http = httpx.Client(base_url=server.url, headers=E2E_AUTH, timeout=30.0)
    pool = ThreadPoolExecutor(1)
    try:
        for cycle in range(KILL_CYCLES):
            decisions, new_placed = decide_and_place(http, [seed_customer(f"rk{cycle}-{i}")
                                                            for i in range(N_CUSTOMERS)])
            placed.update(new_placed)
            now = datetime.now(UTC).isoformat()
            events = [event(decisions[rng.integers(N_CUSTOMERS)]["decision_id"],
                            EVENT_TYPES[rng.integers(len(EVENT_TYPES))], f"rk{cycle}-e{i}", now)
                      for i in range(N_EVENTS)]
            load = pool.submit(post_until_stopped, server.url, events, threading.Event())
            time.sleep(rng.uniform(0.1, 0.4))
            redis.kill()
            down = event(decisions[0]["decision_id"], "opened", f"rk{cycle}-down", now)
            assert http.post("/v1/feedback", json={"events": [down]}).status_code == 503
            during = {"customers": [seed_customer(f"rk{cycle}-during")]}
            assert http.post("/v1/decisions", json=during).status_code == 200
            redis.start()
            history = load.result(timeout=60)
            where = f"cycle {cycle} ({len(history.acked)} acknowledged, {len(history.rejected)} refused)"
            assert history.acked and history.rejected, f"{where}: the kill did not land mid-stream"
            assert set(history.rejected.values()) == {503}, f"{where}: not 503 while Redis was down"
            by_id = {e["event_id"]: e for e in events}
            for event_id in sorted(set(by_id) - history.acked):  # the 503s, and any timeout of a loaded machine
                post_until_2xx(http, "/v1/feedback", {"events": [by_id[event_id]]})
            post_until_2xx(http, "/v1/feedback", {"events": [down]})
            all_events += [*events, down]
    finally:
        pool.shutdown()
        http.close()
        server.stop()
    store = redis_store(redis.url, tmp_path)
    try:
        missing = {e["event_id"] for e in all_events} - stored_event_ids(store, [e["event_id"] for e in all_events])
    finally:
        store.close()
    assert not missing, f"acknowledged events lost: {sorted(missing)[:5]}"
    base_alpha, _ = base_posterior()
    alpha, _ = served_posterior(state, **redis_settings(redis))
    assert np.array_equal(alpha, base_alpha + reference_successes(placed, all_events)), \
        "the posterior after the kills is not the fold over the stored events (an event lost or applied twice)"


def test_an_outage_keeps_decisions_going_and_refuses_feedback_until_redis_is_back(redis: RedisServer,
                                                                                   tmp_path: Path) -> None:
    state = tmp_path / "state"
    options = redis_settings(redis)
    with app_client(state, **options) as client:
        (before,) = decide(client, seed_customer("o-before"))
        now = datetime.now(UTC).isoformat()
        unsubscribe = event(before["decision_id"], "unsubscribed", "o-unsub", now)
        unsubscribe["channel"] = "email"
        assert client.post("/v1/feedback", json={"events": [unsubscribe]}).status_code == 200
        redis.kill()
        click = {"events": [event(before["decision_id"], "clicked", "o-click", now)]}
        refused = client.post("/v1/feedback", json=click)
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert client.get("/v1/ready").status_code == 200  # decisions keep coming to this worker
        during = decide(client, seed_customer("o-before", channels=["email", "push"]),
                        *(seed_customer(f"o-during-{i}") for i in range(20)))
        again = [decide(client, seed_customer("o-before", channels=["email", "push"]))[0] for _ in range(30)]
        assert all(d["channel"] != "email" for d in [during[0], *again]), "an unsubscribe was ignored"
        redis.start()
        assert post_until_2xx(client, "/v1/feedback", click).json()["results"][0]["status"] in ("applied", "late")
        late = {"events": [event(during[1]["decision_id"], "opened", "o-late", now)]}
        assert client.post("/v1/feedback", json=late).json()["results"][0]["status"] != "unknown_decision"
        redis.kill()
        (stopped,) = decide(client, seed_customer("o-stopped"))  # spooled by a worker that stops next
    redis.start()
    with app_client(state, **options) as restarted:  # a new worker writes the stopped worker's spool
        orphan = {"events": [event(stopped["decision_id"], "opened", "o-orphan", now)]}
        assert restarted.post("/v1/feedback", json=orphan).json()["results"][0]["status"] != "unknown_decision"
        made_offline = [d["decision_id"] for d in [*during, *again, stopped]]
        with restarted.app.state.service.store.transaction() as tx:
            assert set(tx.decisions(made_offline)) == set(made_offline), "a decision made offline was not logged"


def test_ready_says_degraded_while_redis_is_down(redis: RedisServer, tmp_path: Path) -> None:
    with app_client(tmp_path / "state", **redis_settings(redis)) as client:
        redis.kill()
        assert client.get("/v1/ready").json()["status"] == "degraded"
        redis.start()
