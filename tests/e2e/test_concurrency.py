"""B9: concurrency. Eight writers on the same arms lose no read-modify-write update.

Writers post feedback for decisions that share one cell and one channel at one local hour (a send
window holding a single hour start), so every success lands on the same two posterior entries. Each
event is posted twice, by two different writers, so duplicates race too: 600 distinct events, 1,200
posts in 400 requests. The final state must equal the sequential fold in the store's outcome log and
after a restart, and, where the test can see it (one process), in the serving app's memory.

Two set-ups: one app under eight threads (the thread pool FastAPI runs sync routes in), and two real
uvicorn processes on one SQLite file with writers spread over both (several workers on one host).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from tests.support.app import E2E_AUTH, app_client
from tests.support.fold import (
    Placed,
    base_posterior,
    decide_and_place,
    logged_successes,
    reference_successes,
    served_posterior,
)
from tests.support.live import ServerFactory
from tests.support.load import same_arm_customers, write_concurrently

N_WRITERS = 8
N_DECISIONS = 150
EVENT_TYPES = ("clicked", "converted", "opened", "unsubscribed")
BATCH = 3  # events per request: small, so writers interleave at fine grain

Post = Callable[[list[dict[str, Any]]], httpx.Response]


def assert_state_is_the_fold(state: Path, placed: dict[str, Placed], events: list[dict[str, Any]]) -> None:
    expected = reference_successes(placed, events)
    assert np.array_equal(logged_successes(state), expected), "the outcome log lost or doubled an update"
    base_alpha, base_beta = base_posterior()
    alpha, beta = served_posterior(state)
    assert np.array_equal(alpha, base_alpha + expected) and np.array_equal(beta, base_beta), \
        "the posterior rebuilt after a restart differs from the sequential fold"


def test_eight_threads_on_one_app_lose_no_update(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with app_client(state) as client:
        decisions, placed = decide_and_place(client, same_arm_customers("t"))
        assert len({p.arm for p in placed.values()}) <= 2, "the window should leave one hour (and no message)"

        def post(batch: list[dict[str, Any]]) -> httpx.Response:
            return client.post("/v1/feedback", json={"events": batch})

        events = write_concurrently([post], decisions)
        policy = client.app.state.service.model.policy
        base_alpha, _ = base_posterior()
        assert np.array_equal(policy.alpha_, base_alpha + reference_successes(placed, events)), \
            "the served in-memory posterior lost or doubled an update"
    assert_state_is_the_fold(state, placed, events)


def test_two_processes_on_one_state_lose_no_update(servers: ServerFactory, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = servers.start(state)
    second = servers.start(state)
    clients = [httpx.Client(base_url=s.url, headers=E2E_AUTH, timeout=30.0) for s in (first, second)]
    try:
        decisions, placed = decide_and_place(clients[0], same_arm_customers("p"))
        events = write_concurrently([lambda b, c=c: c.post("/v1/feedback", json={"events": b}) for c in clients],
                                    decisions)
    finally:
        for client in clients:
            client.close()
        first.stop()
        second.stop()
    assert_state_is_the_fold(state, placed, events)
