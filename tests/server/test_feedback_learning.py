"""Decide → feedback → learn: exact posterior changes, idempotency, windows, late and undelivered events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
from fastapi.testclient import TestClient

from sendwise.server import Settings
from tests.support.api import customer, decide, event, feedback
from tests.support.app import Clock, posterior, serve
from tests.support.catalogs import CATALOG
from tests.support.stores import on_every_store

CLICK, UNSUBSCRIBE = CATALOG.outcomes.index("click"), CATALOG.outcomes.index("unsubscribe")


def _sent_email(client: TestClient, clock: Clock, customer_id: str = "c-1") -> tuple[dict, tuple[int, int]]:
    """Decide an email for a customer, move the clock past its send time; returns it and its (cell, arm)."""
    (decision,) = decide(client, customer(customer_id, channels=["email"], quiet_hours={}))
    if decision["channel"] == "none":  # the ε-floor may explore the no-message arm; ask again
        return _sent_email(client, clock, customer_id + "'")
    clock.now = max(clock.now, datetime.fromisoformat(decision["send_at"]) + timedelta(hours=1))
    return decision, (CATALOG.cell("NA", "ecommerce", "broadcast"), CATALOG.arm("email", decision["local_hour"]))


@on_every_store
def test_a_click_adds_exactly_one_to_alpha_and_the_window_adds_the_unsubscribe_failure(
        client: TestClient, clock: Clock) -> None:
    decision, (cell, arm) = _sent_email(client, clock)
    alpha0, beta0 = posterior(client)
    assert feedback(client, event(decision, "clicked", "e-1")) == ["applied"]
    alpha1, beta1 = posterior(client)
    expected = alpha0.copy()
    expected[cell, CLICK, arm] += 1
    np.testing.assert_array_equal(alpha1, expected)
    np.testing.assert_array_equal(beta1, beta0)
    assert feedback(client, event(decision, "converted", "e-2")) == ["applied"]  # a conversion is the same click
    np.testing.assert_array_equal(posterior(client)[0], expected)

    clock.advance(days=8)
    assert client.app.state.service.close_windows(clock.now) == 1
    alpha2, beta2 = posterior(client)
    expected_beta = beta0.copy()
    expected_beta[cell, UNSUBSCRIBE, arm] += 1
    np.testing.assert_array_equal(alpha2, expected)
    np.testing.assert_array_equal(beta2, expected_beta)
    assert client.app.state.service.close_windows(clock.now) == 0  # counted once


@on_every_store
def test_a_window_without_a_click_counts_one_failure_per_outcome_only_after_it_closes(
        client: TestClient, clock: Clock) -> None:
    decision, (cell, arm) = _sent_email(client, clock)
    alpha0, beta0 = posterior(client)
    send_at = datetime.fromisoformat(decision["send_at"])
    assert client.app.state.service.close_windows(send_at + timedelta(hours=71)) == 0  # pending is no failure
    np.testing.assert_array_equal(posterior(client)[1], beta0)
    grace = timedelta(seconds=client.app.state.settings.attribution_grace_seconds)
    assert client.app.state.service.close_windows(send_at + timedelta(hours=72) + grace) == 1
    expected = beta0.copy()
    expected[cell, CLICK, arm] += 1
    expected[cell, UNSUBSCRIBE, arm] += 1
    np.testing.assert_array_equal(posterior(client)[1], expected)
    np.testing.assert_array_equal(posterior(client)[0], alpha0)


@on_every_store
def test_an_undelivered_message_teaches_nothing_unless_a_later_sign_proves_delivery(
        client: TestClient, clock: Clock) -> None:
    failed, _ = _sent_email(client, clock, "c-failed")
    rescued, (cell, arm) = _sent_email(client, clock, "c-rescued")
    alpha0, beta0 = posterior(client)
    assert feedback(client, event(failed, "failed", "f-1"), event(rescued, "failed", "f-2")) == ["applied", "applied"]
    assert feedback(client, event(rescued, "opened", "o-2")) == ["applied"]
    client.app.state.service.close_windows(clock.advance(days=10))
    alpha1, beta1 = posterior(client)
    np.testing.assert_array_equal(alpha1, alpha0)
    assert (beta1 - beta0).sum() == 2  # only the rescued decision: one failure per outcome
    assert beta1[cell, CLICK, arm] - beta0[cell, CLICK, arm] >= 1


@on_every_store
def test_late_and_orphan_events_are_reported_and_teach_nothing(client: TestClient, clock: Clock) -> None:
    decision, _ = _sent_email(client, clock)
    late_at = datetime.fromisoformat(decision["send_at"]) + timedelta(hours=73)
    clock.now = late_at
    before = posterior(client)
    orphan = {"decision_id": str(uuid.uuid4())}
    statuses = feedback(client, event(decision, "clicked", "late-1", late_at), event(orphan, "clicked", "orphan-1",
                                                                                         clock.now))
    assert statuses == ["late", "unknown_decision"]
    for got, want in zip(posterior(client), before, strict=True):
        np.testing.assert_array_equal(got, want)


@on_every_store
def test_an_event_from_before_its_decision_teaches_nothing_but_an_unsubscribe_still_counts(
        client: TestClient, clock: Clock) -> None:
    made_at = clock.now
    decision, _ = _sent_email(client, clock)
    before = posterior(client)
    too_early = made_at - timedelta(minutes=10)
    statuses = feedback(client, event(decision, "clicked", "early-click", too_early),
                        event(decision, "unsubscribed", "early-unsub", too_early))
    assert statuses == ["before_decision", "before_decision"]
    for got, want in zip(posterior(client), before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert decide(client, customer(decision["customer_id"], channels=["email"]))[0]["channel"] == "none"
    within_skew = made_at - timedelta(minutes=4)  # a client clock a little behind the server's
    assert feedback(client, event(decision, "clicked", "skewed-click", within_skew)) == ["applied"]


@on_every_store
def test_duplicates_change_nothing_and_a_changed_payload_is_409_with_state_unchanged(
        client: TestClient, clock: Clock) -> None:
    decision, _ = _sent_email(client, clock)
    click = event(decision, "clicked", "e-1")
    assert feedback(client, click) == ["applied"]
    after_first = posterior(client)
    assert feedback(client, click, click) == ["duplicate", "duplicate"]
    np.testing.assert_array_equal(posterior(client)[0], after_first[0])

    other, _ = _sent_email(client, clock, "c-2")
    new_click = event(other, "clicked", "e-2")
    changed = {**click, "type": "opened"}
    response = client.post("/v1/feedback", json={"events": [new_click, changed]})
    assert response.status_code == 409
    assert response.json() == {"detail": "event_id 'e-1' was already recorded with different content; "
                                         "nothing in this request was applied"}
    np.testing.assert_array_equal(posterior(client)[0], after_first[0])  # e-2 was not applied either
    assert feedback(client, new_click) == ["applied"]


@on_every_store
def test_the_same_event_id_twice_in_one_request_with_different_content_is_409(client: TestClient,
                                                                             clock: Clock) -> None:
    decision, _ = _sent_email(client, clock)
    response = client.post("/v1/feedback", json={"events": [event(decision, "clicked", "e-1"),
                                                           event(decision, "opened", "e-1")]})
    assert response.status_code == 409
    assert feedback(client, event(decision, "clicked", "e-1")) == ["applied"]


@on_every_store
def test_an_equal_timestamp_in_another_zone_is_the_same_payload(client: TestClient, clock: Clock) -> None:
    decision, _ = _sent_email(client, clock)
    utc = datetime.fromisoformat(decision["send_at"])
    assert feedback(client, event(decision, "clicked", "e-1", utc)) == ["applied"]
    shifted = utc.astimezone(datetime.fromisoformat("2025-01-01T00:00:00+05:30").tzinfo)
    assert feedback(client, event(decision, "clicked", "e-1", shifted)) == ["duplicate"]


@on_every_store
def test_a_restart_rebuilds_exactly_the_same_posterior(make_settings: Callable[..., Settings], clock: Clock) -> None:
    settings = make_settings()
    with serve(settings, clock) as client:
        for i in range(12):
            decision, _ = _sent_email(client, clock, f"c-{i}")
            if i % 3 == 0:
                feedback(client, event(decision, "clicked", f"click-{i}"))
            if i % 4 == 0:
                feedback(client, event(decision, "unsubscribed", f"unsub-{i}"))
        client.app.state.service.close_windows(clock.advance(days=8))
        alpha, beta = posterior(client)
        assert (alpha - 1).sum() > 0 and (beta - 1).sum() > 0
    with serve(settings, clock) as restarted:
        alpha2, beta2 = posterior(restarted)
    assert alpha.tobytes() == alpha2.tobytes() and beta.tobytes() == beta2.tobytes()


@on_every_store
def test_the_background_task_closes_windows_on_the_apps_clock(make_settings: Callable[..., Settings],
                                                              clock: Clock) -> None:
    with serve(make_settings(close_windows_seconds=0.05), clock) as client:
        _sent_email(client, clock)
        failures_before = posterior(client)[1].sum()
        clock.advance(days=8)
        deadline = time.monotonic() + 10.0
        while posterior(client)[1].sum() == failures_before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert posterior(client)[1].sum() == failures_before + 2  # one failure per outcome
