"""Feedback load on a server: concurrent writers that post every event twice, and a paced poster.

Shared by the concurrency, crash and Redis end-to-end tests.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from .api import event, seed_customer
from .app import E2E_AUTH

N_WRITERS = 8
N_DECISIONS = 150
WRITER_EVENT_TYPES = ("clicked", "converted", "opened", "unsubscribed")
BATCH = 3  # events per request: small, so writers interleave at fine grain
RATE_PER_S = 500.0
N_CLIENTS = 4

Post = Callable[[list[dict[str, Any]]], httpx.Response]


def same_arm_customers(prefix: str) -> list[dict[str, Any]]:
    """Customers whose only options are email at one local hour (or no message)."""
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    window = {"not_before": start.isoformat(), "deadline": (start + timedelta(minutes=30)).isoformat()}
    return [seed_customer(f"{prefix}{i}", channels=["email"], **window) for i in range(N_DECISIONS)]


def write_concurrently(posts: list[Post], decisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Post every event twice, by two different writers, in batches; returns the distinct events."""
    now = datetime.now(UTC).isoformat()
    events = [event(d["decision_id"], kind, f"w-{d['decision_id']}-{kind}", now)
              for d in decisions for kind in WRITER_EVENT_TYPES]
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


@dataclass
class History:
    """What the client saw of each event: a 2xx, a 4xx, never sent (connect failed), or indeterminate."""

    acked: set[str] = field(default_factory=set)
    rejected: dict[str, int] = field(default_factory=dict)
    unsent: set[str] = field(default_factory=set)
    indeterminate: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, event_id: str, outcome: httpx.Response | Exception) -> None:
        with self.lock:
            if isinstance(outcome, httpx.ConnectError):
                self.unsent.add(event_id)
            elif isinstance(outcome, Exception):
                self.indeterminate.add(event_id)
            elif outcome.is_success:
                self.acked.add(event_id)
            else:
                self.rejected[event_id] = outcome.status_code


def post_until_stopped(url: str, events: list[dict[str, Any]], stop: threading.Event) -> History:
    """Post ``events`` one per request from ``N_CLIENTS`` threads, paced to ``RATE_PER_S``, until ``stop``."""
    history, counter, start = History(), itertools.count(), time.monotonic()

    def client() -> None:
        with httpx.Client(base_url=url, headers=E2E_AUTH, timeout=5.0) as http:
            while not stop.is_set() and (i := next(counter)) < len(events):
                if stop.wait(max(0.0, start + i / RATE_PER_S - time.monotonic())):
                    break
                try:
                    outcome: httpx.Response | Exception = http.post("/v1/feedback", json={"events": [events[i]]})
                except httpx.TransportError as exc:
                    outcome = exc
                history.record(events[i]["event_id"], outcome)

    threads = [threading.Thread(target=client) for _ in range(N_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return history


def decide_until_stopped(url: str, prefix: str, stop: threading.Event, batch: int = 20) -> set[str]:
    """Post decision batches for new customers (``prefix``-n) until ``stop`` or the server goes away; the ids
    of the acknowledged decisions."""
    acked: set[str] = set()
    with httpx.Client(base_url=url, headers=E2E_AUTH, timeout=5.0) as http:
        for n in itertools.count():
            if stop.is_set():
                break
            customers = [seed_customer(f"{prefix}-{n}-{i}") for i in range(batch)]
            try:
                response = http.post("/v1/decisions", json={"customers": customers})
            except httpx.TransportError:
                break
            if response.is_success:
                acked |= {d["decision_id"] for d in response.json()["decisions"]}
    return acked
