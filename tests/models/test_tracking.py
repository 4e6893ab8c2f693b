"""Tracking a real (tiny) simulation and an evaluation in an MLflow SQLite store of a temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from sendwise.cli.main import main
from sendwise.models.mlops.compare import compare_latest
from sendwise.models.mlops.tracking import (
    CLASSIC_ML_KIND,
    DAILY_PREFIX,
    EXPERIMENT_KIND_TAG,
    default_tracking_uri,
    experiment_id,
    log_evaluation,
    log_simulation,
    resolve_tracking_uri,
    world_experiment,
)
from sendwise.models.sim.simulate import SimulationResult, simulate

N_DAYS = 4



@pytest.fixture(scope="module")
def simulation(tmp_path_factory: pytest.TempPathFactory) -> SimulationResult:
    return simulate("seed", ["ts", "oracle"], n_customers=300, n_days=N_DAYS, seeds=[0, 1],
                    out_dir=tmp_path_factory.mktemp("sim"), progress=False)


@pytest.fixture(scope="module")
def parent(mlflow_store: str, simulation: SimulationResult) -> Run:
    return MlflowClient(mlflow_store).get_run(log_simulation(simulation, tracking_uri=mlflow_store))


@pytest.fixture(scope="module")
def children(mlflow_store: str, parent: Run) -> dict[tuple[str, int], Run]:
    runs = MlflowClient(mlflow_store).search_runs([parent.info.experiment_id],
                                           f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    return {(r.data.params["policy"], int(r.data.params["seed"])): r for r in runs}


def test_parent_run_has_the_context_the_summary_and_the_artifacts(
        mlflow_store: str, simulation: SimulationResult, parent: Run, children: dict[tuple[str, int], Run]) -> None:
    client = MlflowClient(mlflow_store)
    assert client.get_experiment(parent.info.experiment_id).name == world_experiment("seed")
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["sendwise.kind"] == "simulation" and parent.data.tags["sendwise.world"] == "seed"
    params = parent.data.params
    assert {k: params[k] for k in ("world", "policies", "seeds", "customers", "days")} == {
        "world": "seed", "policies": "ts,oracle", "seeds": "0,1", "customers": "300", "days": str(N_DAYS)}
    assert params["sendwise_version"] and len(params.get("git_commit", "0" * 40)) == 40
    mean, low, high = simulation.summary["ts"]["net_value"]
    assert parent.data.metrics["ts/net_value"] == pytest.approx(mean)
    assert (parent.data.metrics["ts/net_value_lo95"], parent.data.metrics["ts/net_value_hi95"]) == pytest.approx(
        (low, high))
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"plots", "world", "result.json"} <= artifacts
    assert {Path(a.path).name for a in client.list_artifacts(parent.info.run_id, "plots")} == {
        p.name for p in simulation.plots}
    assert [a.path for a in client.list_artifacts(parent.info.run_id, "world")] == ["world/seed.toml"]
    result = json.loads(Path(client.download_artifacts(parent.info.run_id, "result.json")).read_text())
    assert [(r["policy"], r["seed"]) for r in result["runs"]] == [("ts", 0), ("ts", 1), ("oracle", 0), ("oracle", 1)]
    assert {r["run_id"] for r in result["runs"]} == {c.info.run_id for c in children.values()}


def test_each_policy_and_seed_has_a_child_run_with_daily_metrics_totals_and_policy(
        mlflow_store: str, simulation: SimulationResult, children: dict[tuple[str, int], Run]) -> None:
    client = MlflowClient(mlflow_store)
    assert sorted(children) == [("oracle", 0), ("oracle", 1), ("ts", 0), ("ts", 1)]
    for run in simulation.runs:
        child = children[run.policy, run.seed]
        assert child.info.status == "FINISHED"
        assert child.data.tags["sendwise.policy"] == run.policy and child.data.tags["sendwise.kind"] == "simulation"
        assert child.data.params["policy.epsilon"] == str(run.params["epsilon"])
        for name, series in run.daily.items():
            history = sorted(client.get_metric_history(child.info.run_id, DAILY_PREFIX + name), key=lambda m: m.step)
            assert [m.step for m in history] == list(range(N_DAYS)), name
            np.testing.assert_allclose([m.value for m in history], series, err_msg=name)
        assert {k: child.data.metrics[k] for k in run.totals} == pytest.approx(run.totals)
        assert [a.path for a in client.list_artifacts(child.info.run_id, "policy_state")] == [
            f"policy_state/{run.policy_state.name}"]
        models = [client.get_logged_model(m.model_id).name for m in child.outputs.model_outputs]
        assert models == ([] if run.policy == "oracle" else ["policy"]), "an oracle cannot serve: no model"


def test_an_evaluation_logs_estimates_with_bounds(mlflow_store: str, tmp_path: Path) -> None:
    table = tmp_path / "estimates.json"
    table.write_text("{}")
    parent_id = log_evaluation({"ts": {"snips": (0.1, 0.05, 0.15), "ips": (0.12, 0.02, 0.2)}}, dataset="demo-logs",
                               params={"logs": "demo-logs.parquet"}, artifacts=[table], tracking_uri=mlflow_store)
    client = MlflowClient(mlflow_store)
    parent = client.get_run(parent_id)
    assert client.get_experiment(parent.info.experiment_id).name == "sendwise-logs-demo-logs"
    assert parent.data.tags["sendwise.kind"] == "evaluation" and parent.data.params["logs"] == "demo-logs.parquet"
    assert [a.path for a in client.list_artifacts(parent_id)] == ["estimates.json"]
    [child] = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert child.data.tags["sendwise.policy"] == "ts"
    assert child.data.metrics == pytest.approx({"snips": 0.1, "snips_lo95": 0.05, "snips_hi95": 0.15,
                                                "ips": 0.12, "ips_lo95": 0.02, "ips_hi95": 0.2})
    [comparison] = compare_latest(experiment="sendwise-logs-demo-logs", tracking_uri=mlflow_store)
    assert comparison.kind == "evaluation" and comparison.columns() == ["ips", "snips"]


def test_compare_reads_back_the_latest_simulation(mlflow_store: str, simulation: SimulationResult, parent: Run,
                                                  children: dict[tuple[str, int], Run], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    [comparison] = compare_latest(experiment=world_experiment("seed"), tracking_uri=mlflow_store)
    assert comparison.run_id == parent.info.run_id and comparison.subject == "seed"
    assert comparison.summary.keys() == simulation.summary.keys()
    for policy, metrics in simulation.summary.items():
        assert comparison.summary[policy] == {m: pytest.approx(bounds) for m, bounds in metrics.items()}, policy
    best = max((children["ts", seed] for seed in (0, 1)), key=lambda r: r.data.metrics["net_value"])
    assert comparison.best_runs == {"ts": best.info.run_id}, "an oracle has no model to promote"
    assert comparison.policies() == ["oracle", "ts"], "best net value first"
    plot = tmp_path / "compare.png"
    assert main(["compare", "--tracking-uri", mlflow_store, "--out", str(plot)]) == 0
    printed = capsys.readouterr().out
    assert "sendwise-world-seed: simulation of seed" in printed and best.info.run_id in printed
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failure_while_logging_marks_the_runs_failed(mlflow_store: str, simulation: SimulationResult) -> None:
    broken = SimulationResult(world=simulation.world, n_customers=1, n_days=N_DAYS, seeds=[0],
                              runs=[simulation.runs[0]], summary={}, plots=[Path("no-such-plot.png")])
    with pytest.raises(OSError):
        log_simulation(broken, tracking_uri=mlflow_store, experiment="broken")
    client = MlflowClient(mlflow_store)
    runs = client.search_runs([client.get_experiment_by_name("broken").experiment_id])
    statuses = {"child" if "mlflow.parentRunId" in r.data.tags else "parent": r.info.status for r in runs}
    assert statuses == {"parent": "FAILED", "child": "FINISHED"}


def test_the_tracking_uri_defaults_to_a_sqlite_file_under_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("SENDWISE_HOME", raising=False)
    assert default_tracking_uri() == f"sqlite:///{tmp_path}/.sendwise/mlflow.db"
    assert resolve_tracking_uri() == default_tracking_uri()
    monkeypatch.setenv("SENDWISE_HOME", str(tmp_path / "home"))
    assert resolve_tracking_uri() == f"sqlite:///{tmp_path}/home/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert resolve_tracking_uri() == "http://tracking.example:5000"
    assert resolve_tracking_uri("sqlite:///elsewhere.db") == "sqlite:///elsewhere.db"


def test_experiments_are_marked_as_classic_ml_so_the_ui_opens_their_runs(mlflow_store: str, parent: Run) -> None:
    client = MlflowClient(mlflow_store)
    assert client.get_experiment(parent.info.experiment_id).tags[EXPERIMENT_KIND_TAG] == CLASSIC_ML_KIND
    older = client.create_experiment("made-before-the-tag")  # e.g. by an earlier sendwise
    assert experiment_id(client, "made-before-the-tag") == older
    assert client.get_experiment(older).tags[EXPERIMENT_KIND_TAG] == CLASSIC_ML_KIND
    chosen = client.create_experiment("kind-of-its-own", tags={EXPERIMENT_KIND_TAG: "genai_development"})
    experiment_id(client, "kind-of-its-own")
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"


def test_promote_best_takes_the_run_compare_names_and_says_when_there_is_none(
        mlflow_store: str, parent: Run, children: dict[tuple[str, int], Run],
        capsys: pytest.CaptureFixture[str]) -> None:
    best = max((children["ts", seed] for seed in (0, 1)), key=lambda r: r.data.metrics["net_value"])
    assert main(["promote", "--best", "ts", "--name", "sendwise-best", "--tracking-uri", mlflow_store]) == 0
    printed = capsys.readouterr().out
    assert f"best run of ts: {best.info.run_id}" in printed and "promoted: sendwise-best version 1" in printed
    version = MlflowClient(mlflow_store).get_model_version_by_alias("sendwise-best", "champion")
    assert version.run_id == best.info.run_id
    assert main(["promote", "--best", "oracle", "--tracking-uri", mlflow_store]) == 2, "an oracle has no model"
    assert "no tracked, promotable run of 'oracle'" in capsys.readouterr().err
