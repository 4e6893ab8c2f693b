"""``sendwise evaluate --dataset … --target …``: targets written as text on the shipped datasets, in one table,
tracked in MLflow; and the reward model's own variance in the intervals of DM and DR."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from sklearn.linear_model import LinearRegression

from sendwise.cli.main import main
from sendwise.models.ope.datasets import HILLSTROM_ACTIONS, load_hillstrom
from sendwise.models.ope.estimators import DM, cross_fit_q_hat
from sendwise.models.ope.evaluation import LOGGING_POLICY, context_features, evaluate
from sendwise.models.ope.logged import LoggedFeedback
from sendwise.models.ope.targets import parse_target


def test_always_an_arm_reproduces_that_arm_of_the_hillstrom_trial(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """Hillstrom assigned each arm at random with probability 1/3, so IPS and SNIPS of 'always <arm>' must
    find that arm's mean visit rate, inside the interval they print."""
    out = tmp_path / "table.json"
    targets = [arg for name in HILLSTROM_ACTIONS for arg in ("--target", f"always:{name}")]
    assert main(["evaluate", "--dataset", "hillstrom", *targets, "--estimators", "ips,snips", "--bootstrap", "300",
                 "--no-track", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    log = load_hillstrom()
    results = {r["target"]: r for r in json.loads(out.read_text())["results"]}
    for arm, name in enumerate(HILLSTROM_ACTIONS):
        mean = log.reward[log.action == arm].mean()
        rows = {row["estimator"]: row for row in results[f"always:{name}"]["rows"]}
        for estimator in ("ips", "snips"):
            row = rows[estimator]
            assert row["low"] <= mean <= row["high"], f"{name} visit rate {mean:.4f} outside {estimator} {row}"
            assert f"[{row['low']:.5f}, {row['high']:.5f}]" in printed
        assert abs(rows["ips"]["estimate"] - mean) < 0.005
        assert rows["snips"]["estimate"] == pytest.approx(mean)


def test_a_trained_target_is_evaluated_on_held_out_rounds_and_tracked(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    assert main(["evaluate", "--dataset", "hillstrom", "--limit", "1200", "--target", "trained",
                 "--target", "logged", "--target", "uniform", "--estimators", "logged,snips,dm", "--bootstrap", "50",
                 "--refits", "5", "--seed", "4", "--test-size", "0.25", "--tracking-uri", store]) == 0
    printed = capsys.readouterr().out
    assert "logs:   hillstrom (300 decisions, 3 actions)" in printed
    assert ("split: 900 rounds train the trained targets, every target is evaluated on the 300 held-out rounds "
            "(random split, seed 4)") in printed
    assert len(re.findall(r"^\S.* logged ", printed, re.MULTILINE)) == 1, printed  # one logging-policy row
    assert re.search(r"^trained +snips ", printed, re.MULTILINE)
    client = MlflowClient(store)
    [run] = client.search_runs([client.get_experiment_by_name("sendwise-logs-hillstrom").experiment_id],
                               "tags.`sendwise.kind` = 'evaluation' and attributes.run_name = 'evaluate hillstrom'")
    params = run.data.params
    assert (params["targets"], params["seed"], params["split_train"], params["split_test"]) == (
        "trained,logged,uniform", "4", "900", "300")
    assert {"trained/snips", "trained/dm_lo95", "uniform/dm_hi95", f"{LOGGING_POLICY}/logged"} <= set(run.data.metrics)
    assert {a.path for a in client.list_artifacts(run.info.run_id)} == {"evaluation.txt", "evaluation.json"}
    assert f"tracked: MLflow run {run.info.run_id} in {store}" in printed


def test_no_track_writes_no_mlflow_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["evaluate", "--dataset", "obd", "--limit", "500", "--target", "always:3", "--estimators", "ips",
                 "--bootstrap", "20", "--no-track"]) == 0
    assert "always:3" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--dataset", "hillstrom", "--target", "always:SMS"],
     "unknown action 'SMS'; the actions of these logs are: Mens E-Mail, Womens E-Mail, No E-Mail"),
    (["--dataset", "obd", "--target", "always:80"],
     "unknown action '80'; these logs have unnamed actions, give an id in [0, 80)"),
    (["--dataset", "hillstrom", "--target", "trained:forest"], "target 'trained:forest': unknown model 'forest'"),
    (["--dataset", "hillstrom", "--target", "uniform", "--target", "uniform"], "target 'uniform' is given twice"),
    (["--dataset", "hillstrom", "--policy", "ts"], "--policy and --target-probs evaluate a --logs file as a whole"),
])
def test_bad_targets_are_clear_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", *args, "--limit", "300", "--no-track"]) == 2
    assert message in capsys.readouterr().err


def test_target_specs_read_back_as_written() -> None:
    assert [parse_target(s).label for s in ("uniform", " always: No E-Mail", "trained:gbm", "logged")] == [
        "uniform", "always:No E-Mail", "trained:gbm", "logged"]


def rare_arm_log(seed: int, n_rounds: int = 300) -> LoggedFeedback:
    """Arm 1 is logged on 6% of rounds only and its reward does not depend on the context, so a fixed
    reward model predicts it the same on every round, whatever its error."""
    rng = np.random.default_rng(seed)
    logging = np.array([0.88, 0.06, 0.06])
    action = rng.choice(3, n_rounds, p=logging)
    reward = (rng.random(n_rounds) < np.array([0.3, 0.5, 0.4])[action]).astype(float)
    return LoggedFeedback(action=action, propensity=logging[action], reward=reward,
                          context=pd.DataFrame({"x": rng.normal(size=n_rounds)}))


def test_the_dm_interval_carries_the_reward_models_error() -> None:
    """Always arm 1 is worth 0.5. Its DM estimate rests on ~18 logged rounds; an interval that refits the
    model covers 0.5 about as often as it should (36 of these 40 logs; a 95% interval misses more than
    6 of 40 with probability 0.3%), one that holds the model fixed is far narrower."""
    target = np.tile([0.0, 1.0, 0.0], (300, 1))
    n_logs, covered, narrower = 40, 0, 0
    for seed in range(n_logs):
        log = rare_arm_log(seed)
        row = evaluate(log, target, estimators="dm", reward_model=LinearRegression(), n_folds=2, n_bootstrap=200,
                       n_refits=30, random_state=seed).estimate("dm")
        covered += row.low <= 0.5 <= row.high
        q_hat = cross_fit_q_hat(context_features(log.context), log.action, log.reward, 3, model=LinearRegression(),
                                n_folds=2, random_state=seed)
        low, high = DM().estimate_interval(log.reward, log.action, log.propensity, target, q_hat,
                                           n_bootstrap=200, random_state=seed)  # the model held fixed
        narrower += (high - low) < (row.high - row.low) / 5
    assert covered >= 34, f"the refitted DM interval covered the truth in {covered} of {n_logs} logs"
    assert narrower == n_logs, f"the fixed-model interval was not far narrower in {n_logs - narrower} of {n_logs} logs"
