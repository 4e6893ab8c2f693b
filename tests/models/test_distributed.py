"""Ray: the same numbers as the local engine, tuning by simulation tracked in MLflow, clear errors.

Tests marked ``ray`` share one small local Ray session and are skipped when Ray is not installed; the
search-syntax and missing-extra tests need no Ray.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sendwise.cli.main import main
from sendwise.models import load_world, simulate, simulate_on_ray
from sendwise.models.mlops.tuning import BEST_FILE, TRIAL_ERROR_TAG, tuning_experiment
from sendwise.models.sim.distributed import MissingExtraError, import_ray

TINY = {"n_customers": 300, "n_days": 4}
SEARCH = "prior_strength=1..200,log;epsilon=0.001..0.05,log"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[ModuleType]:
    """One local Ray of two CPUs for the module, in a short temporary folder (Ray's socket paths are short)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'sendwise[ray]'")
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, object_store_memory=100 * 2**20)
        try:
            yield ray
        finally:
            ray.shutdown()
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.mark.ray
def test_ray_engine_gives_the_local_numbers_bit_for_bit(ray_cluster: ModuleType, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    settings = {**TINY, "seeds": [0, 1], "progress": False}
    local = simulate("seed", ["ts", "hier_ts"], out_dir=tmp_path / "local", **settings)
    on_ray = simulate_on_ray("seed", ["ts", "hier_ts"], out_dir=tmp_path / "ray", **settings)

    assert on_ray.summary == local.summary
    for mine, theirs in zip(on_ray.runs, local.runs, strict=True):
        assert (mine.policy, mine.seed, mine.totals) == (theirs.policy, theirs.seed, theirs.totals)
        for metric, series in theirs.daily.items():
            np.testing.assert_array_equal(mine.daily[metric], series, err_msg=f"{mine.policy} seed {mine.seed}")
        assert mine.policy_state == tmp_path / "ray" / "policies" / f"{mine.policy}-seed{mine.seed}.npz"
        assert mine.policy_state.read_bytes() == theirs.policy_state.read_bytes()

    code = main(["simulate", "--engine", "ray", "--policies", "ts,hier_ts", "--customers", "300", "--days", "4",
                 "--seeds", "2", "--out", str(tmp_path / "cli"), "--no-progress"])
    assert code == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "cli" / "result.json").read_text())["summary"]
    assert summary == {p: {m: list(v) for m, v in metrics.items()} for p, metrics in local.summary.items()}


@pytest.mark.ray
def test_tune_finds_a_configuration_and_tracks_every_trial(ray_cluster: ModuleType, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(["tune", "--policy", "hier_ts", "--search", SEARCH, "--trials", "3", "--customers", "300",
                 "--days", "4", "--out", str(tmp_path / "tune"), "--tracking-uri", store])
    out, err = capsys.readouterr()
    assert code == 0, err

    best = json.loads((tmp_path / "tune" / BEST_FILE).read_text())
    assert (best["policy"], best["metric"], best["trials"]) == ("hier_ts", "net_value_last14", 3)
    assert 1 <= best["params"]["prior_strength"] <= 200 and 0.001 <= best["params"]["epsilon"] <= 0.05
    assert f"best: trial {best['trial']}, net_value_last14 = {best['value']:,.6g}" in out

    client = MlflowClient(store)
    experiment = client.get_experiment_by_name(tuning_experiment("seed")).experiment_id
    children = client.search_runs([experiment], f"tags.mlflow.parentRunId = '{best['mlflow_run_id']}'")
    assert len(children) == 3
    for child in children:
        assert set(child.data.params) == {"prior_strength", "epsilon"}
        assert "net_value_last14" in child.data.metrics and TRIAL_ERROR_TAG not in child.data.tags
    assert max(c.data.metrics["net_value_last14"] for c in children) == best["value"]
    parent = client.get_run(best["mlflow_run_id"])
    assert parent.data.metrics["hier_ts/net_value_last14"] == best["value"]
    assert BEST_FILE in [a.path for a in client.list_artifacts(best["mlflow_run_id"])]

    # The best configuration simulated again gives the trial's number (simulations are deterministic) ...
    rerun = client.get_run(best["simulation_run_id"])
    assert rerun.data.metrics["hier_ts/net_value_last14"] == best["value"]
    # ... and its policy is registered, with no alias moved.
    version = client.get_model_version(best["registered"]["name"], best["registered"]["version"])
    assert client.get_run(version.run_id).data.tags["mlflow.parentRunId"] == best["simulation_run_id"]
    assert not client.get_registered_model(best["registered"]["name"]).aliases


BAD_SEARCHES = [
    pytest.param("", "the search space is empty; give name=lo..hi[,log] or name=a|b|c pieces joined by ';' for "
                 "hyper-parameters of 'hier_ts': bank_draws, context, context_prior, discount, epsilon, personal, "
                 "personal_prior, prior_strength, sharpness",
                 id="empty"),
    pytest.param("epsilon", "bad search piece 'epsilon': expected name=lo..hi, name=lo..hi,log or name=a|b|c",
                 id="no-equals"),
    pytest.param("foo=1..2", "bad search piece 'foo=1..2': 'hier_ts' has no hyper-parameter 'foo'; known: "
                 "bank_draws, context, context_prior, discount, epsilon, personal, personal_prior, prior_strength, "
                 "sharpness", id="unknown-name"),
    pytest.param("epsilon=a..b", "bad search piece 'epsilon=a..b': a range must be two finite numbers, lo..hi "
                 "(e.g. 0.001..0.05)", id="not-numbers"),
    pytest.param("epsilon=0.01", "bad search piece 'epsilon=0.01': a range must be two finite numbers, lo..hi "
                 "(e.g. 0.001..0.05)", id="one-number"),
    pytest.param("epsilon=0.05..0.001", "bad search piece 'epsilon=0.05..0.001': the low end 0.05 must be below "
                 "the high end 0.001", id="reversed"),
    pytest.param("prior_strength=0..200,log", "bad search piece 'prior_strength=0..200,log': a log range must "
                 "start above 0; got 0", id="log-from-zero"),
    pytest.param("epsilon=0.001..0.05,lin", "bad search piece 'epsilon=0.001..0.05,lin': unknown flag 'lin' after "
                 "the range; the only flag is 'log'", id="unknown-flag"),
    pytest.param("sharpness=2|", "bad search piece 'sharpness=2|': a choice must list options between '|', none "
                 "empty (e.g. 2|4|8)", id="empty-option"),
    pytest.param("epsilon=0.001..0.05; epsilon=0.01|0.02", "bad search piece 'epsilon=0.01|0.02': 'epsilon' is "
                 "given twice", id="twice"),
    pytest.param("epsilon=0.5..2", "bad search piece 'epsilon=0.5..2': epsilon=2.0 is refused: `epsilon` must be "
                 "a finite number >= 0 and <= 1; got 2.0", id="refused-bound"),
    pytest.param("sharpness=2|x", "bad search piece 'sharpness=2|x': sharpness='x' is refused: policy 'hier_ts' "
                 "rejected parameters ['sharpness']: `sharpness` must be a number; got 'x'", id="refused-option"),
]


@pytest.mark.parametrize("search, message", BAD_SEARCHES)
def test_bad_search_syntax_names_the_piece(search: str, message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["tune", "--search", search, "--trials", "1"])
    assert code == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"sendwise tune: error: {message}"


def test_search_pieces_become_ranges_and_choices() -> None:
    from sendwise.models.mlops.tuning import Choice, FloatRange, parse_search

    space = parse_search(" prior_strength = 1..200,log ; sharpness=2|4|8 ;epsilon=0..0.05", load_world("seed"),
                         "hier_ts")
    assert space == {"prior_strength": FloatRange(1.0, 200.0, log=True), "sharpness": Choice((2, 4, 8)),
                     "epsilon": FloatRange(0.0, 0.05)}


@pytest.mark.parametrize("argv, message", [
    (["tune", "--search", SEARCH, "--metric", "sends"],
     "cannot tune for 'sends'; choose one of net_value_last14, net_value, clicks, regret, cost, unsubscribes"),
    (["simulate", "--address", "auto"], "--address names a Ray cluster: use it with --engine ray"),
])
def test_bad_settings_are_refused_before_ray_starts(argv: list[str], message: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"sendwise {argv[0]}: error: {message}"


def test_missing_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an environment without Ray looks like to `import`
    message = "Ray is not installed; install the extra with: pip install 'sendwise[ray]'"
    with pytest.raises(MissingExtraError, match=re.escape(message)):
        import_ray()
    assert main(["simulate", "--engine", "ray", "--customers", "50", "--days", "1", "--seeds", "1"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == f"sendwise simulate: error: {message}"
