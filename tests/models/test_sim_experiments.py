"""The simulator runs experiments: groups by the hash, the holdout gets nothing, only teaching groups teach."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sendwise.models import Assignment, Experiment, Learner, load_world, read_logs
from sendwise.models.experiments import BASELINE, HOLDOUT, MODEL, lift_report, pseudonym
from sendwise.models.policies import Resolved, Sends
from sendwise.models.policies.factory import make_world_policy
from sendwise.models.sim.simulate import run_loop

WORLD = load_world("seed")


class RecordingLoop(Learner):
    """A learner that remembers which customers' messages and outcomes reached it."""

    def __init__(self) -> None:
        super().__init__(make_world_policy("ts", WORLD, seed=0, prior="perturbed"))
        self.sent_to: list[np.ndarray] = []
        self.resolved_for: list[np.ndarray] = []

    def sent(self, sends: Sends) -> None:
        self.sent_to.append(sends.customer_idx)
        super().sent(sends)

    def resolve(self, resolved: Resolved) -> None:
        self.resolved_for.append(resolved.customer_idx)
        super().resolve(resolved)


def run(tmp_path: Path, experiment: Experiment, n_customers: int = 600, n_days: int = 10):
    loop = RecordingLoop()
    path = tmp_path / "decisions.parquet"
    result = run_loop(WORLD, loop, n_customers=n_customers, n_days=n_days, seed=3, name="ts", log_decisions=path,
                      experiment=experiment)
    groups = experiment.assignment.groups([pseudonym(i) for i in range(n_customers)])
    taught = {int(c) for part in loop.sent_to + loop.resolved_for for c in part}
    return result, read_logs(path), groups, taught


@pytest.mark.parametrize("baseline", ["static", "random_hour"])
def test_holdout_and_baseline_never_teach_and_the_holdout_gets_no_message(tmp_path, baseline):
    experiment = Experiment(Assignment(salt="t", holdout_share=0.2, baseline_share=0.4), baseline=baseline,
                            pre_days=3)
    result, log, groups, taught = run(tmp_path, experiment)
    assert taught and all(groups[c] == MODEL for c in taught)
    group = log.experiment["group"].to_numpy()
    customer = log.experiment["customer"].to_numpy()
    assert (log.action[group == HOLDOUT] == WORLD.catalog.null_arm).all()
    assert (log.propensity[group == HOLDOUT] == 1.0).all()
    expected = groups[[int(c.split("-")[1]) for c in customer]]
    assert (group == expected).all()  # each decision carries its customer's one group
    assert log.experiment["pre_engagement"].notna().all()
    assert result.totals["true_value_per_customer_holdout"] == 0.0
    report = lift_report(log, experiment.assignment.shares)
    assert {g.group for g in report.groups} == {HOLDOUT, MODEL, BASELINE}


def test_the_random_hour_baseline_keeps_the_playbooks_channel(tmp_path):
    experiment = Experiment(Assignment(salt="t", baseline_share=1.0), baseline="random_hour")
    _, log, _, taught = run(tmp_path, experiment)
    assert not taught
    channels = WORLD.catalog.arm_channels()[log.action]
    industry = log.context["industry"].to_numpy()
    playbook = np.array([WORLD.catalog.channels.index(WORLD.playbook[i][0]) for i in industry])
    own_allowed = (log.allowed[:, :-1].reshape(log.n_rounds, -1, 24).any(axis=2)
                   [np.arange(log.n_rounds), playbook])
    assert own_allowed.any() and (channels[own_allowed] == playbook[own_allowed]).all()
    assert len(np.unique(WORLD.catalog.arm_hours()[log.action[own_allowed]])) > 6


def test_shadow_mode_serves_the_baseline_learns_from_it_and_logs_the_models_choice(tmp_path):
    experiment = Experiment(Assignment(salt="t", baseline_share=0.9), shadow=True)
    _, log, groups, taught = run(tmp_path, experiment)
    assert any(groups[c] == BASELINE for c in taught)  # what was really sent teaches
    group = log.experiment["group"].to_numpy()
    agrees = log.experiment["model_agrees"].to_numpy()
    assert np.isnan(agrees[group == MODEL]).all() and not np.isnan(agrees[group == BASELINE]).any()
    shadow = lift_report(log, experiment.assignment.shares).shadow
    assert shadow is not None and 0.0 <= shadow.low <= shadow.agreement <= shadow.high <= 1.0


def test_a_run_without_an_experiment_is_unchanged(tmp_path):
    plain = run_loop(WORLD, Learner(make_world_policy("ts", WORLD, seed=0)), n_customers=300, n_days=4, seed=1,
                     name="ts")
    everyone = run_loop(WORLD, Learner(make_world_policy("ts", WORLD, seed=0)), n_customers=300, n_days=4, seed=1,
                        name="ts", experiment=Experiment(Assignment(salt="t")))
    assert plain.totals["net_value"] == everyone.totals["net_value"]


def test_shadow_mode_needs_a_baseline_share_and_a_known_baseline():
    with pytest.raises(ValueError, match="baseline share > 0"):
        Experiment(Assignment(salt="t"), shadow=True)
    with pytest.raises(ValueError, match="unknown baseline 'ts'"):
        Experiment(Assignment(salt="t", baseline_share=0.5), baseline="ts")


@pytest.mark.parametrize("seed", [0, 1])
def test_the_reports_interval_covers_the_simulated_true_difference(tmp_path, seed):
    # the fast version of benchmarks/lift_check.py (20 seeds of 20,000 customers there)
    experiment = Experiment(Assignment(salt=f"check-{seed}", holdout_share=0.2, baseline_share=0.4), pre_days=4)
    path = tmp_path / "decisions.parquet"
    result = run_loop(WORLD, Learner(make_world_policy("hier_ts", WORLD, seed=seed)), n_customers=3000, n_days=11,
                      seed=seed, name="hier_ts", log_decisions=path, experiment=experiment)
    report = lift_report(read_logs(path), experiment.assignment.shares)
    truth = {g: result.totals[f"true_value_per_customer_{g}"] for g in (HOLDOUT, MODEL, BASELINE)}
    for control in (HOLDOUT, BASELINE):
        d = report.difference(MODEL, control)
        true = truth[MODEL] - truth[control]
        assert d.low <= true <= d.high and d.cuped_low <= true <= d.cuped_high, (control, d, true)
        assert d.estimate != true  # drawn outcomes, not the expectation
    assert not report.sample_ratio.flagged, report.sample_ratio
