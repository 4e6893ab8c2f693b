"""No request waits forever: planning outside the store lock, deadlines, a concurrency limit, fresh answers.

- A decision is planned from a snapshot, outside any store lock, so feedback is never held up by a
  batch being sampled; what changed meanwhile for its customers (an opt-out, a send) is re-read under
  the lock and the decision re-planned.
- Every request has a deadline (``request_timeout_seconds``): a wait for the store ends there with
  503 + ``Retry-After``, work past it writes nothing, and a route still busy gets 503 at the deadline.
- More than ``max_concurrent_requests`` in flight: 503 + ``Retry-After`` at once; the probes still answer.
- Two workers on one store answer the segment posterior alike (each catches up before answering).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sendwise.server import Settings
from sendwise.server.service import SendwiseService
from tests.support.api import customer, decide, event, feedback
from tests.support.app import Clock, serve
from tests.support.stores import on_every_store, on_redis, writer_holding_the_lock

WAIT_S = 10.0  # how long a test waits for something that must happen (far beyond any expected time)
BLOCKED_EMAIL = {"rule": "unsubscribed", "channel": "email", "hours": list(range(24))}


@contextmanager
def planning_paused(service: SendwiseService) -> Iterator[threading.Event]:
    """Inside: the next decision pauses after reading its snapshot, before planning, until the block ends.

    Yields the event that is set once the paused decision has reached that point.
    """
    plan, reached, resume = service._plan, threading.Event(), threading.Event()
    first = threading.Lock()

    def paused(*args: Any, **kwargs: Any) -> Any:
        if first.acquire(blocking=False):
            reached.set()
            resume.wait(WAIT_S)
        return plan(*args, **kwargs)

    service._plan = paused  # type: ignore[method-assign]
    try:
        yield reached
    finally:
        resume.set()
        del service._plan  # the class's method again


def slow_planning(service: SendwiseService, seconds: float) -> None:
    """Every decision of ``service`` takes ``seconds`` longer to plan (a huge batch on a slow machine)."""
    plan = service._plan

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return plan(*args, **kwargs)

    service._plan = slow  # type: ignore[method-assign]


@on_every_store
def test_feedback_is_not_held_up_by_a_decision_being_planned(client: TestClient, clock: Clock) -> None:
    (sent,) = decide(client, customer("c-0"))
    service = client.app.state.service
    with ThreadPoolExecutor(2) as pool, planning_paused(service) as reached:
        pending = pool.submit(decide, client, customer("c-1"))
        assert reached.wait(WAIT_S)
        recorded = pool.submit(feedback, client, event(sent, "opened", "o-1", clock.now))
        assert recorded.result(timeout=WAIT_S) == ["applied"]  # while the decision is still being planned
        assert not pending.done()
    assert len(pending.result(timeout=WAIT_S)) == 1


@on_every_store
def test_an_opt_out_committed_while_a_decision_is_planned_is_honoured(client: TestClient, clock: Clock) -> None:
    (earlier,) = decide(client, customer("c-1", channels=["email", "push"]))
    service = client.app.state.service
    with ThreadPoolExecutor(2) as pool, planning_paused(service) as reached:
        pending = pool.submit(decide, client, customer("c-1", channels=["email"]))
        assert reached.wait(WAIT_S)  # its snapshot allowed email
        opt_out = event(earlier, "unsubscribed", "u-1", clock.now, channel="email")
        assert pool.submit(feedback, client, opt_out).result(timeout=WAIT_S) == ["applied"]
    (decision,) = pending.result(timeout=WAIT_S)
    assert decision["channel"] == "none"
    assert BLOCKED_EMAIL in decision["reason"]["guardrails"]  # planned again from what the lock saw


@on_every_store
def test_a_request_that_waits_for_the_store_past_its_deadline_gets_503_and_writes_nothing(
        make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(make_settings(request_timeout_seconds=0.5), clock) as client:
        (sent,) = decide(client, customer("c-1"))
        opened = event(sent, "opened", "o-1", clock.now)
        store = client.app.state.service.store
        with writer_holding_the_lock(store, lambda tx: tx.decisions([sent["decision_id"]])):
            started = time.monotonic()
            response = client.post("/v1/feedback", json={"events": [opened]})
            waited = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"].isdigit() and "busy" in response.json()["detail"]
        assert waited < 3.0, f"waited {waited:.1f} s with a 0.5 s deadline"
        assert feedback(client, opened) == ["applied"]  # the refused request left nothing behind


@on_every_store
def test_a_route_still_busy_at_its_deadline_gets_503_and_commits_nothing_after_it(
        make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(make_settings(request_timeout_seconds=0.5), clock) as client:
        service = client.app.state.service
        slow_planning(service, 3.0)
        started = time.monotonic()
        response = client.post("/v1/decisions", json={"customers": [customer("c-1")]})
        answered = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == "1" and "within 0.5 s" in response.json()["detail"]
        assert answered < 2.9, f"answered after {answered:.1f} s, not at the deadline"  # the work takes 3 s
        time.sleep(3.5 - answered)  # the abandoned work has ended by now
        assert service.store.open_decisions() == 0  # it did not log a decision nobody received


def test_beyond_the_concurrency_limit_requests_get_503_while_the_probes_answer(
        make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(make_settings(max_concurrent_requests=1), clock) as client, ThreadPoolExecutor(1) as pool:
        with planning_paused(client.app.state.service) as reached:
            pending = pool.submit(decide, client, customer("c-1"))
            assert reached.wait(WAIT_S)
            refused = client.post("/v1/decisions", json={"customers": [customer("c-2")]})
            assert refused.status_code == 503 and refused.headers["Retry-After"] == "1"
            assert "1 requests (its limit)" in refused.json()["detail"]
            assert client.get("/v1/health").status_code == 200
            assert client.get("/v1/ready").status_code == 200
        assert len(pending.result(timeout=WAIT_S)) == 1
        assert len(decide(client, customer("c-2"))) == 1  # the slot is free again


@on_redis
def test_two_workers_answer_the_segment_posterior_alike_at_once(make_settings: Callable[..., Settings],
                                                                clock: Clock) -> None:
    settings = make_settings(snapshot_seconds=600.0)  # without catching up, a worker would lag ten minutes
    path = "/v1/segments/NA/ecommerce/broadcast/posterior"
    with serve(settings, clock) as first, serve(settings, clock) as second:
        before = first.get(path).json()
        assert second.get(path).json() == before
        decisions = decide(first, *(customer(f"c-{i}") for i in range(20)))
        sent = [d for d in decisions if d["channel"] != "none"]
        assert sent, "no message among 20 decisions"
        assert feedback(first, *(event(d, "clicked", f"k-{i}", clock.now) for i, d in enumerate(sent)))
        after = first.get(path).json()
        assert after != before  # the sends and clicks moved it
        assert second.get(path).json() == after


def test_the_limits_refuse_nonsense_settings() -> None:
    for field in ("max_concurrent_requests", "request_timeout_seconds", "body_timeout_seconds"):
        with pytest.raises(ValueError, match=field):
            Settings(**{field: 0})
