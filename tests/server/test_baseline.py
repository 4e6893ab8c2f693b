"""The served baseline group and shadow mode: who gets the baseline, what it sends, and what teaches the model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.models.experiments import BASELINE, HOLDOUT, MODEL, Assignment, lift_report
from sendwise.server import Settings
from sendwise.server.export import decision_log
from tests.support.api import customer, decide, event, feedback, seed_customer
from tests.support.app import Clock, app_client, posterior, serve

HOLD, SHARE, SALT = 0.2, 0.4, "spring"
SPLIT = Assignment(salt=SALT, holdout_share=HOLD, baseline_share=SHARE)
OPEN = {"quiet_hours": {}}  # no extra quiet hours: the caller's 9 am email is allowed


def group(client: TestClient, customer_id: str) -> str:
    return SPLIT.group_of(client.app.state.service.pseudonymize(customer_id))


def experiment_settings(make_settings: Callable[..., Settings], **overrides: object) -> Settings:
    return make_settings(holdout_share=HOLD, baseline_share=SHARE, holdout_salt=SALT, **overrides)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(people=st.lists(st.tuples(st.text("abcdef0123456789", min_size=1, max_size=8), st.sampled_from(
    ["email", "push", None]), st.integers(0, 23)), min_size=1, max_size=20, unique_by=lambda p: p[0]))
def test_the_baseline_group_gets_the_callers_option_and_the_others_never_do(
        make_settings: Callable[..., Settings], clock: Clock, people: list[tuple[str, str | None, int]]) -> None:
    with serve(experiment_settings(make_settings), clock) as client:
        asked = [customer(c, **OPEN, **({} if ch is None else {"default_channel": ch, "default_hour": h}))
                 for c, ch, h in people]
        for (customer_id, channel, hour), d in zip(people, decide(client, *asked), strict=True):
            mode = d["reason"]["mode"]
            assert (mode == "baseline") == (group(client, customer_id) == BASELINE)
            if mode == "baseline":
                # Without a world there is no playbook: a customer sent without a default gets no message.
                expected = ("none", None) if channel is None else (channel, hour)
                assert (d["channel"], d["local_hour"], d["propensity"]) == (*expected, 1.0)
                assert d["reason"]["model_choice"] is None  # not in shadow mode


def test_a_ruled_out_default_falls_back_to_the_nearest_allowed_hour(make_settings: Callable[..., Settings],
                                                                      clock: Clock) -> None:
    with serve(experiment_settings(make_settings), clock) as client:
        ids = [f"c-{i}" for i in range(60) if group(client, f"c-{i}") == BASELINE][:5]
        quiet = {"quiet_hours": {"email": {"start": 8, "end": 11}}}  # 8, 9, 10 ruled out: 9 is nearest to 7 and 11
        for d in decide(client, *(customer(c, default_channel="email", default_hour=9, **quiet) for c in ids)):
            assert (d["channel"], d["local_hour"], d["reason"]["mode"]) == ("email", 7, "baseline")


@pytest.mark.parametrize("shadow", [False, True])
def test_baseline_messages_teach_only_in_shadow_mode_which_says_what_the_model_would_have_chosen(
        make_settings: Callable[..., Settings], clock: Clock, shadow: bool) -> None:
    with serve(experiment_settings(make_settings, shadow=shadow), clock) as client:
        ids = [f"c-{i}" for i in range(80) if group(client, f"c-{i}") == BASELINE][:12]
        before = posterior(client)
        made = decide(client, *(customer(c, default_channel="push", default_hour=13, **OPEN) for c in ids))
        assert {d["reason"]["mode"] for d in made} == {"baseline"}
        clock.advance(hours=2)
        feedback(client, *(event(d, "clicked", f"e-{i}", at=clock.now) for i, d in enumerate(made)
                           if d["channel"] != "none"))
        clock.advance(days=8)
        client.app.state.service.close_windows(clock.now)
        learned = any(not np.array_equal(was, now) for was, now in zip(before, posterior(client), strict=True))
        assert learned == shadow
        for d in made:
            choice = d["reason"]["model_choice"]
            if not shadow:
                assert choice is None
                continue
            assert 0 < choice["propensity"] <= 1 and 0 <= choice["sent_probability"] <= 1
            assert choice["agrees"] == ((choice["channel"], choice["local_hour"]) == (d["channel"], d["local_hour"]))
            if choice["agrees"]:  # the very vector the model sampled from: its entry for the arm it chose
                assert choice["sent_probability"] == choice["propensity"]
        if shadow:
            log = decision_log(client.app.state.service.store)
            rows = log.experiment["group"].to_numpy() == BASELINE
            agrees = log.experiment["model_agrees"].to_numpy()
            assert rows.sum() == len([d for d in made if d["channel"] != "none"]) or rows.sum() == len(made)
            assert np.all(np.isin(agrees[rows], [0.0, 1.0]))
            report = lift_report(log, SPLIT.shares)
            assert report.shadow is not None and report.shadow.decisions == rows.sum()
            sent = log.experiment["model_sent_probability"].to_numpy()[rows]
            weights = sent / log.propensity[rows]
            expected = float((weights * log.reward[rows]).sum() / weights.sum())
            assert report.shadow.model_value == pytest.approx(expected)
            assert report.shadow.model_value_low <= report.shadow.model_value <= report.shadow.model_value_high


def test_every_group_is_in_the_export_and_the_lift_report(make_settings: Callable[..., Settings],
                                                         clock: Clock) -> None:
    with serve(experiment_settings(make_settings), clock) as client:
        ids = [f"c-{i}" for i in range(60)]
        decide(client, *(customer(c, default_channel="email", default_hour=9, **OPEN) for c in ids))
        clock.advance(days=31)
        client.app.state.service.close_windows(clock.now)
        log = decision_log(client.app.state.service.store)
        groups = dict(zip(log.experiment["customer"], log.experiment["group"], strict=True))
        pseudonyms = [client.app.state.service.pseudonymize(c) for c in ids]
        assert [groups[p] for p in pseudonyms] == SPLIT.groups(pseudonyms).tolist()
        counts = lift_report(log, SPLIT.shares).sample_ratio.observed
        assert set(counts) == {HOLDOUT, MODEL, BASELINE} and sum(counts.values()) == len(ids)


def test_the_static_baseline_sends_the_world_playbook(tmp_path: Path) -> None:
    with app_client(tmp_path / "state", holdout_share=0.0, baseline_share=1.0, baseline="static") as client:
        made = decide(client, *(seed_customer(f"c-{i}", channels=["email", "push", "sms"]) for i in range(10)))
        world = client.app.state.service.loader.world
        channel, hour = world.playbook["ecommerce"]
        assert {d["reason"]["mode"] for d in made} == {"baseline"}
        assert all((d["channel"], d["local_hour"]) == (channel, hour) for d in made if d["channel"] == channel)
        assert sum(d["channel"] == channel for d in made) >= 8  # the playbook arm unless a guardrail rules it out


def test_experiment_settings_that_cannot_work_are_refused(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="must be <= 1"):
        make_settings(holdout_share=0.6, baseline_share=0.5)
    with pytest.raises(ValueError, match="baseline_share > 0"):
        make_settings(shadow=True)
    with pytest.raises(ValueError, match="default_hour` needs `default_channel"):
        from sendwise.server.schemas import CustomerRequest

        CustomerRequest.model_validate(customer("c-1", default_hour=9))


def test_the_dashboard_shows_the_lift_of_the_servers_own_log(make_settings: Callable[..., Settings],
                                                             clock: Clock) -> None:
    with serve(experiment_settings(make_settings), clock) as client:
        page = client.get("/dashboard").text
        assert 'id="lift"' in page and "no closed decision yet" in page
        decide(client, *(customer(f"c-{i}", default_channel="email", default_hour=9, **OPEN) for i in range(40)))
        clock.advance(days=31)
        client.app.state.service.close_windows(clock.now)
        section = client.get("/dashboard").text.split('id="lift"')[1].split("</section>")[0]
        report = lift_report(decision_log(client.app.state.service.store), SPLIT.shares)
        for g in report.groups:
            assert f"<td>{g.group}</td>" in section and f"{g.per_customer['value']:.4f}" in section
        assert "model − holdout" in section and "as configured" in section
    with serve(make_settings(), clock) as plain:
        assert 'id="lift"' not in plain.get("/dashboard").text
