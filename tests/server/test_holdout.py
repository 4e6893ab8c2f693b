"""The served holdout: held-out customers get no message, transactional ones always may, outcomes never teach."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.models.experiments import HOLDOUT, MODEL, Assignment, lift_report
from sendwise.server import Settings
from sendwise.server.export import decision_log
from tests.support.api import customer, decide, event, feedback
from tests.support.app import Clock, posterior, serve

SHARE, SALT = 0.4, "spring"
SPLIT = Assignment(salt=SALT, holdout_share=SHARE)


def held_out(client: TestClient, customer_id: str) -> bool:
    return SPLIT.group_of(client.app.state.service.pseudonymize(customer_id)) == HOLDOUT


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(st.tuples(st.text("abcdefgh0123456789", min_size=1, max_size=8), st.booleans()),
                       min_size=1, max_size=20, unique_by=lambda p: p[0]))
def test_held_out_customers_never_get_a_message_and_transactional_ones_are_never_held_out(
        make_settings: Callable[..., Settings], clock: Clock, people: list[tuple[str, bool]]) -> None:
    with serve(make_settings(holdout_share=SHARE, holdout_salt=SALT), clock) as client:
        decisions = decide(client, *(customer(c, transactional=t) for c, t in people))
        for (customer_id, transactional), d in zip(people, decisions, strict=True):
            if held_out(client, customer_id) and not transactional:
                assert (d["channel"], d["send_at"], d["propensity"], d["reason"]["mode"]) == ("none", None, 1.0,
                                                                                            "holdout")
            else:
                assert d["reason"]["mode"] != "holdout"


def test_a_held_out_customers_outcomes_are_kept_and_never_change_the_posterior(
        make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(make_settings(holdout_share=SHARE, holdout_salt=SALT), clock) as client:
        ids = [f"c-{i}" for i in range(40)]
        held = [c for c in ids if held_out(client, c)]
        assert 0 < len(held) < len(ids)
        before = posterior(client)
        decisions = decide(client, *(customer(c) for c in held))
        clock.advance(hours=1)
        events = [event(d, "converted", f"e-{i}", at=clock.now, value=25.0) for i, d in enumerate(decisions)]
        assert set(feedback(client, *events)) == {"applied"}  # accepted and kept
        clock.advance(days=30)
        assert client.app.state.service.close_windows(clock.now) == len(held)
        for was, now in zip(before, posterior(client), strict=True):
            np.testing.assert_array_equal(was, now)
        decide(client, *(customer(c) for c in ids if c not in held))
        clock.advance(days=30)
        client.app.state.service.close_windows(clock.now)
        log = decision_log(client.app.state.service.store)
        groups = log.experiment["group"].to_numpy()
        assert (log.outcomes["click"].to_numpy()[groups == HOLDOUT] == 1.0).all()  # the organic conversions
        assert lift_report(log, SPLIT.shares).sample_ratio.observed == {HOLDOUT: len(held), MODEL: 40 - len(held)}


def test_without_a_holdout_nobody_is_held_out(client: TestClient) -> None:
    decisions = decide(client, *(customer(f"c-{i}") for i in range(30)))
    assert all(d["reason"]["mode"] != "holdout" for d in decisions)
