"""B1: crash durability. Kill -9 a real server under feedback load; nothing acknowledged is lost or doubled.

Each cycle: decide for 200 new customers, post unique feedback events one per request from a few
threads at up to 500 events/s, SIGKILL the server's process group after U(0.2 s, 1.5 s), restart it
on the same state, retry every indeterminate event with the same ``event_id``, then check the
history: every acknowledged event is stored, no event that never reached the server is, the
posterior equals the reference fold over the stored events exactly, and ``PRAGMA integrity_check``
says ``ok``. ``SENDWISE_CRASH_CYCLES`` sets the number of cycles: 12 by default, because RELIABILITY
B1's 30 take 1.5 minutes alone and 2.5 beside the rest of the suite on a 2-core machine; run 30
before a release and 1,000 in the long tier.

The same cycles also run on ``sendwise serve --workers 2`` with decisions posted concurrently with
the feedback (``SENDWISE_CRASH_CYCLES_WORKERS``, 4 by default: each restart starts two workers): then
also every acknowledged decision must be in the store after the restart.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from sendwise.server import BackgroundServer, serve_in_background
from tests.support.api import event, seed_customer
from tests.support.app import E2E_AUTH, e2e_settings
from tests.support.fold import (
    Placed,
    base_posterior,
    decide_and_place,
    logged_successes,
    query,
    reference_successes,
    served_posterior,
)
from tests.support.live import LiveServer, ServerFactory
from tests.support.load import decide_until_stopped, post_until_stopped

CYCLES = int(os.environ.get("SENDWISE_CRASH_CYCLES", "12"))  # 3 to 5 s each on a busy 2-core machine
CYCLES_WORKERS = int(os.environ.get("SENDWISE_CRASH_CYCLES_WORKERS", "4"))
RATE_PER_S = 500.0
N_CLIENTS = 4
N_CUSTOMERS = 200
N_EVENTS = 800  # more than RATE_PER_S × the longest run (1.5 s), so the kill always lands mid-stream
EVENT_TYPES = ("clicked", "converted", "opened", "delivered", "unsubscribed")


Server = LiveServer | BackgroundServer


def crash_cycle(restart: Callable[[Server], Server], server: Server, state: Path, cycle: int,
                rng: np.random.Generator, placed: dict[str, Placed], stored_events: list[dict[str, Any]], *,
                decided_under_load: set[str] | None = None) -> Server:
    """One kill-restart-retry cycle; extends ``placed`` and ``stored_events``; returns the restarted server.

    With ``decided_under_load`` a client posts decision batches for new customers all along, and the ids
    of those acknowledged are added to it.
    """
    with httpx.Client(base_url=server.url, headers=E2E_AUTH, timeout=30.0) as http:
        decisions, new_placed = decide_and_place(http, [seed_customer(f"k{cycle}-{i}") for i in range(N_CUSTOMERS)])
    placed.update(new_placed)
    now = datetime.now(UTC).isoformat()
    events = [event(decisions[rng.integers(N_CUSTOMERS)]["decision_id"], EVENT_TYPES[rng.integers(len(EVENT_TYPES))],
                    f"k{cycle}-e{i}", now) for i in range(N_EVENTS)]
    stop = threading.Event()

    def crash() -> None:
        server.kill()
        stop.set()

    killer = threading.Timer(rng.uniform(0.2, 1.5), crash)
    with ThreadPoolExecutor(1) as pool:
        deciding = (None if decided_under_load is None
                    else pool.submit(decide_until_stopped, server.url, f"n{cycle}", stop))
        killer.start()
        history = post_until_stopped(server.url, events, stop)
        killer.join()
        acked_decisions = set() if deciding is None else deciding.result(timeout=60)

    server = restart(server)
    by_id = {e["event_id"]: e for e in events}
    with httpx.Client(base_url=server.url, headers=E2E_AUTH, timeout=30.0) as http:
        for event_id in sorted(history.indeterminate):
            response = http.post("/v1/feedback", json={"events": [by_id[event_id]]})
            assert response.status_code == 200, f"cycle {cycle}: retry of {event_id}: {response.text}"
            # "duplicate" if the lost attempt was committed; a no-message decision is closed, so "late".
            first_time = "late" if placed[by_id[event_id]["decision_id"]].arm is None else "applied"
            assert response.json()["results"][0]["status"] in ("duplicate", first_time), response.text
    acked = history.acked | history.indeterminate

    stored = {event_id for (event_id,) in query(state, f"SELECT event_id FROM events WHERE event_id LIKE 'k{cycle}-%'")}
    where = f"cycle {cycle} ({len(history.acked)} acked, {len(history.indeterminate)} indeterminate)"
    assert not history.rejected, f"{where}: events rejected: {history.rejected}"
    assert not acked - stored, f"{where}: acknowledged events lost: {sorted(acked - stored)[:5]}"
    assert not stored & history.unsent, f"{where}: events stored that never reached the server"
    assert stored == acked, f"{where}: stored events that were never sent: {sorted(stored - acked)[:5]}"
    stored_events += [by_id[event_id] for event_id in stored]
    expected = reference_successes(placed, stored_events)
    logged = logged_successes(state)
    assert np.array_equal(logged, expected), (
        f"{where}: outcome log differs from the fold over stored events at {np.argwhere(logged != expected)[:5]}")
    assert query(state, "PRAGMA integrity_check") == [("ok",)], where
    if decided_under_load is not None:
        lost = acked_decisions - {d for (d,) in query(state, "SELECT decision_id FROM decisions")}
        assert not lost, f"{where}: {len(lost)} acknowledged decisions lost, e.g. {sorted(lost)[:3]}"
        decided_under_load |= acked_decisions
    return server


def test_acknowledged_feedback_survives_kill_9(servers: ServerFactory, tmp_path: Path) -> None:
    rng, state = np.random.default_rng(), tmp_path / "state"  # the kill timing is random anyway
    placed: dict[str, Placed] = {}
    stored_events: list[dict[str, Any]] = []
    server = servers.start(state)
    try:
        for cycle in range(CYCLES):
            server = crash_cycle(lambda killed: servers.start(state, port=killed.port), server, state, cycle, rng,
                                 placed, stored_events)
    finally:
        server.stop()
    assert_posterior_is_the_fold(state, placed, stored_events)


def test_two_workers_lose_nothing_acknowledged_under_concurrent_decisions_and_feedback(tmp_path: Path) -> None:
    rng, state = np.random.default_rng(), tmp_path / "state"
    env = {"NUMBA_CACHE_DIR": os.environ.get("NUMBA_CACHE_DIR", str(tmp_path / "numba"))}
    placed: dict[str, Placed] = {}
    stored_events: list[dict[str, Any]] = []
    decided: set[str] = set()

    def start(_: Server | None = None) -> BackgroundServer:
        return serve_in_background(e2e_settings(state), workers=2, env=env, log=tmp_path / "server.log")

    server: Server = start()
    try:
        for cycle in range(CYCLES_WORKERS):
            server = crash_cycle(start, server, state, cycle, rng, placed, stored_events,
                                 decided_under_load=decided)
    finally:
        server.stop()
    assert decided, "no decision was acknowledged under load in any cycle (every kill came too early)"
    assert_posterior_is_the_fold(state, placed, stored_events)


def assert_posterior_is_the_fold(state: Path, placed: dict[str, Placed], stored_events: list[dict[str, Any]]) -> None:
    """A server restarted on ``state`` serves the prior plus exactly the stored events' successes."""
    base_alpha, base_beta = base_posterior()
    alpha, beta = served_posterior(state)
    assert np.array_equal(alpha, base_alpha + reference_successes(placed, stored_events)), \
        "the posterior rebuilt after the last restart differs from the fold over stored events"
    assert np.array_equal(beta, base_beta), "no window closed, yet beta changed"
