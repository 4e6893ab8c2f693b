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

import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from e2e_helpers import (
    AUTH,
    Placed,
    ServerFactory,
    app_client,
    base_posterior,
    customer,
    decide,
    feedback_event,
    logged_successes,
    reference_successes,
    served_posterior,
)

N_WRITERS = 8
N_DECISIONS = 150
EVENT_TYPES = ("clicked", "converted", "opened", "unsubscribed")
BATCH = 3  # events per request: small, so writers interleave at fine grain

Post = Callable[[list[dict[str, Any]]], httpx.Response]


def same_arm_customers(prefix: str) -> list[dict[str, Any]]:
    """Customers whose only options are email at one local hour (or no message)."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    window = {"not_before": start.isoformat(), "deadline": (start + timedelta(minutes=30)).isoformat()}
    return [customer(f"{prefix}{i}", channels=["email"], **window) for i in range(N_DECISIONS)]


def write_concurrently(posts: list[Post], decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Post every event twice, by two different writers, in batches; returns the distinct events."""
    now = datetime.now(UTC).isoformat()
    events = [feedback_event(f"w-{d['decision_id']}-{kind}", d["decision_id"], kind, now)
              for d in decisions for kind in EVENT_TYPES]
    batches = [events[i:i + BATCH] for i in range(0, len(events), BATCH)]
    work = [batches[w::N_WRITERS] + batches[(w + 1) % N_WRITERS::N_WRITERS] for w in range(N_WRITERS)]
    statuses: dict[str, list[str]] = defaultdict(list)
    failures: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        for batch in work[w]:
            response = posts[w % len(posts)](batch)
            with lock:
                if response.status_code != 200:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
                for result in response.json()["results"]:
                    statuses[result["event_id"]].append(result["status"])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(N_WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, f"{len(failures)} requests failed; first: {failures[0]}"
    # Exactly one of an event's two posts is processed (applied, or late for a no-message decision).
    wrong = {event_id: got for event_id, got in statuses.items() if len(got) != 2 or got.count("duplicate") != 1}
    assert len(statuses) == len(events) and not wrong, f"events not processed exactly once: {list(wrong.items())[:3]}"
    return events


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
        decisions, placed = decide(client, same_arm_customers("t"))
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
    clients = [httpx.Client(base_url=s.url, headers=AUTH, timeout=30.0) for s in (first, second)]
    try:
        decisions, placed = decide(clients[0], same_arm_customers("p"))
        events = write_concurrently([lambda b, c=c: c.post("/v1/feedback", json={"events": b}) for c in clients],
                                    decisions)
    finally:
        for client in clients:
            client.close()
        first.stop()
        second.stop()
    assert_state_is_the_fold(state, placed, events)
