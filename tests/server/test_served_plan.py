"""``sendwise plan --served``: the channel plan of the served model's learned posterior over the store's traffic."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sendwise.cli.main import main
from sendwise.models.sim.plan import PlanResult
from sendwise.server import Settings
from sendwise.server.planning import served_plan
from tests.support.api import decide, event, feedback, seed_customer
from tests.support.app import START, Clock, serve

EMAIL_OR_SMS = {"channels": ["email", "sms"]}
CUSTOMERS = 80


def plan_after(settings: Settings, clock: Clock, *, click_sms: bool) -> PlanResult:
    """A round of SMS-only decisions (every SMS clicked, if asked), windows closed, then the served plan."""
    with serve(settings, clock) as client:
        made = decide(client, *(seed_customer(f"c-{i}", channels=["sms"]) for i in range(CUSTOMERS)))
        texts = [d for d in made if d["channel"] == "sms"]
        assert texts, "the round sent no SMS to learn from"
        if click_sms:
            clock.now = max(datetime.fromisoformat(d["send_at"]) for d in texts) + timedelta(hours=1)
            assert set(feedback(client, *(event(d, "clicked", f"click-{i}") for i, d in enumerate(texts)))) == {
                "applied"}
        service = client.app.state.service
        service.close_windows(clock.advance(days=10))
        return served_plan(settings, service.store, [50_000], channels=["sms"], n_draws=200)


def test_what_the_served_model_learned_moves_its_plan(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    """The same decisions, once with every SMS clicked: SMS now earns more where it is the only channel."""
    plain = plan_after(make_settings(world="seed", model_uri=None, prior_trials=2, decision_seed=5,
                                     state_dir=tmp_path / "plain"), Clock(START), click_sms=False)
    clicked = plan_after(make_settings(world="seed", model_uri=None, prior_trials=2, decision_seed=5,
                                       state_dir=tmp_path / "clicked"), Clock(START), click_sms=True)
    (sms_plain,), (sms_clicked,) = plain.channels, clicked.channels
    assert plain.settings["decisions"] == clicked.settings["decisions"] == CUSTOMERS
    assert plain.settings["customers"] == CUSTOMERS
    assert sms_plain.fixed_monthly_cost == sms_clicked.fixed_monthly_cost > 0
    assert sms_clicked.gain_per_customer[0] > max(sms_plain.gain_per_customer[0], 0.0)
    assert sms_clicked.break_even_mau[0] < sms_plain.break_even_mau[0]
    assert plain.policy.startswith("prior-")


def test_the_plan_command_reads_the_servers_state(make_settings: Callable[..., Settings], clock: Clock,
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = make_settings(world="seed", model_uri=None)
    with serve(settings, clock) as client:
        decide(client, *(seed_customer(f"c-{i}", **EMAIL_OR_SMS) for i in range(20)))
        client.app.state.service.close_windows(clock.advance(days=10))
    out = tmp_path / "plan.json"
    state = f"sqlite:///{settings.state_path}"
    assert main(["plan", "--served", "--state-url", state, "--mau", "5000,500000", "--draws", "50",
                 "--json", str(out), "--out", str(tmp_path / "plan.png")]) == 0
    printed = capsys.readouterr().out
    assert "credible interval over 50 posterior draws" in printed and "20 logged decisions" in printed
    written = json.loads(out.read_text())
    assert [c["channel"] for c in written["channels"]] == ["email", "sms", "whatsapp"]
    assert written["decisions"] == 20 and (tmp_path / "plan.png").stat().st_size > 0
    assert main(["plan", "--served", "--state-url", state, "--customers", "10"]) == 2
    assert "--customers set(s) up a simulation" in capsys.readouterr().err
    assert main(["plan", "--served", "--state-url", f"sqlite:///{tmp_path}/none.db"]) == 2
    assert "does not exist" in capsys.readouterr().err
