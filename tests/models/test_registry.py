"""The registry: register, alias, load in a fresh process, and the off-policy promotion gate.

Three saved policies with known preferences go through ``log_simulation`` as seeds 0, 1, 2 of a
hand-made result: ``good`` sends email at 10:00 (the arm that pays in the gate's logs), ``bad`` sends
push at 20:00 (which never pays), ``spare`` goes under other registered names (and is broken there).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from sendwise.cli.main import main
from sendwise.models import load_policy, load_world
from sendwise.models.mlops.mlflow_model import customer_batch
from sendwise.models.mlops.registry import (
    GATE_TAG,
    alias_version,
    load_registered_policy,
    promote,
    register_policy,
    set_alias,
)
from sendwise.models.mlops.tracking import log_simulation
from sendwise.models.ope.logged import LoggedFeedback, write_logs
from sendwise.models.policies.factory import make_world_policy
from sendwise.models.sim.simulate import PolicyRun, SimulationResult, summarize

NAME = "sendwise-policy"
WORLD = load_world("seed")
GOOD_ARM = WORLD.catalog.arm("email", 10)
BAD_ARM = WORLD.catalog.arm("push", 20)
CONTEXT = {"region": "NA", "industry": "ecommerce", "campaign_type": "onboarding"}



def preferring(arm: int, path: Path) -> Path:
    """A Thompson policy sure that ``arm`` clicks (p ≈ 0.9) and every other arm does not (p ≈ 0.001)."""
    policy = make_world_policy("ts", WORLD, seed=0)
    policy.beta_[:, 0, :] += 1000.0
    policy.beta_[:, 1, :] += 1000.0
    policy.alpha_[:, 0, arm], policy.beta_[:, 0, arm] = 900.0, 100.0
    return policy.save(path)


@pytest.fixture(scope="module")
def policy_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("policies")
    return {label: preferring(arm, folder / f"{label}.npz")
            for label, arm in (("good", GOOD_ARM), ("bad", BAD_ARM), ("spare", GOOD_ARM))}


@pytest.fixture(scope="module")
def run_ids(mlflow_store: str, policy_files: dict[str, Path]) -> dict[str, str]:
    """Child run id per label, after logging the three policies as one simulation."""
    runs = [PolicyRun("ts", seed, {"epsilon": 0.01}, {"net_value": np.zeros(2)}, {"net_value": float(seed)}, path)
            for seed, path in enumerate(policy_files.values())]
    result = SimulationResult(world=WORLD, n_customers=0, n_days=2, seeds=[0, 1, 2], runs=runs,
                              summary=summarize(runs))
    parent_id = log_simulation(result, tracking_uri=mlflow_store, experiment="registry-tests")
    client = MlflowClient(mlflow_store)
    children = client.search_runs([client.get_run(parent_id).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{parent_id}'")
    by_seed = {int(r.data.params["seed"]): r.info.run_id for r in children}
    return {label: by_seed[seed] for seed, label in enumerate(policy_files)} | {"parent": parent_id}


@pytest.fixture(scope="module")
def versions(mlflow_store: str, run_ids: dict[str, str]) -> dict[str, str]:
    return {label: register_policy(run_ids[label], tracking_uri=mlflow_store) for label in ("good", "bad")}


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Uniformly logged decisions in one context where only the good arm ever pays."""
    rng = np.random.default_rng(0)
    n_rounds = 3000
    action = rng.integers(0, WORLD.catalog.n_arms, n_rounds)
    log = LoggedFeedback(action=action, propensity=np.full(n_rounds, 1 / WORLD.catalog.n_arms),
                         reward=(action == GOOD_ARM).astype(float), catalog=WORLD.catalog,
                         context=pd.DataFrame([CONTEXT] * n_rounds))
    return write_logs(log, tmp_path_factory.mktemp("logs") / "uniform.parquet")


def test_registering_a_run_again_keeps_its_version(mlflow_store: str, run_ids: dict[str, str],
                                                   versions: dict[str, str]) -> None:
    assert versions["good"] != versions["bad"]
    assert register_policy(run_ids["good"], tracking_uri=mlflow_store) == versions["good"]


def test_alias_moves_are_seen_by_a_new_client(mlflow_store: str, versions: dict[str, str]) -> None:
    for label in ("good", "bad"):
        set_alias(NAME, versions[label], "champion", tracking_uri=mlflow_store)
        assert str(MlflowClient(mlflow_store).get_model_version_by_alias(NAME, "champion").version) == versions[label]
        assert alias_version(NAME, "champion", tracking_uri=mlflow_store) == versions[label]
    assert alias_version(NAME, "no-such-alias", tracking_uri=mlflow_store) is None
    assert alias_version("no-such-model", "champion", tracking_uri=mlflow_store) is None


def test_a_registered_policy_loads_with_its_arrays_and_version(mlflow_store: str, versions: dict[str, str],
                                                               policy_files: dict[str, Path]) -> None:
    policy, version = load_registered_policy(f"models:/{NAME}/{versions['good']}", tracking_uri=mlflow_store)
    saved = load_policy(policy_files["good"])
    assert version == versions["good"]
    np.testing.assert_array_equal(policy.alpha_, saved.alpha_)
    np.testing.assert_array_equal(policy.beta_, saved.beta_)
    assert policy.catalog == saved.catalog


def test_the_registered_model_decides_in_a_fresh_process_like_the_policy_in_memory(
        mlflow_store: str, versions: dict[str, str], policy_files: dict[str, Path], tmp_path: Path) -> None:
    set_alias(NAME, versions["good"], "champion", tracking_uri=mlflow_store)
    rng = np.random.default_rng(2)
    customers = pd.DataFrame({
        "region": rng.choice(WORLD.catalog.regions, 50), "industry": rng.choice(WORLD.catalog.industries, 50),
        "campaign_type": rng.choice(WORLD.catalog.campaign_types, 50),
        "timezone": rng.choice(list(WORLD.region_timezones.values()), 50),
        "channels": rng.choice(["email,push", "push", "sms,whatsapp,email"], 50),
    })
    script = (
        "import sys, mlflow, pandas as pd\n"
        f"model = mlflow.pyfunc.load_model('models:/{NAME}@champion')\n"
        "customers = pd.read_json(sys.stdin, orient='records')\n"
        "out = model.predict(customers, params={'seed': 5, 'now': '2025-05-01T00:00Z', 'n_draws': 50})\n"
        "print(out.to_json(orient='records'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], input=customers.to_json(orient="records"), text=True,
                          capture_output=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "MLFLOW_TRACKING_URI": mlflow_store})
    assert done.returncode == 0, done.stderr[-3000:]
    remote = pd.DataFrame(json.loads(done.stdout.strip().splitlines()[-1]))
    in_memory = load_policy(policy_files["good"], random_state=5).decide(customer_batch(WORLD.catalog, customers))
    np.testing.assert_array_equal(remote["arm"].to_numpy(), in_memory.arm)
    assert (remote["channel"] == [WORLD.catalog.channel_of(a) for a in in_memory.arm]).all()


def test_a_failed_gate_leaves_the_alias_where_it_was(mlflow_store: str, run_ids: dict[str, str],
                                                     versions: dict[str, str], logs: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    set_alias(NAME, versions["good"], "champion", tracking_uri=mlflow_store)
    code = main(["promote", "--run", run_ids["bad"], "--gate", "--logs", str(logs), "--tracking-uri", mlflow_store])
    printed = capsys.readouterr().out
    assert code == 1, printed
    assert f"not promoted: snips on uniform.parquet: candidate version {versions['bad']} lower 95% bound" in printed
    client = MlflowClient(mlflow_store)
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == versions["good"]
    rejected = client.get_model_version(NAME, versions["bad"])
    assert rejected.tags[GATE_TAG] == "rejected", "a candidate the gate turned down must be marked rejected"
    assert rejected.aliases == []


def test_a_passing_gate_moves_the_alias_and_logs_the_evaluation(mlflow_store: str, versions: dict[str, str],
                                                                logs: Path) -> None:
    set_alias(NAME, versions["bad"], "champion", tracking_uri=mlflow_store)
    outcome = promote(version=versions["good"], logs=logs, tracking_uri=mlflow_store)
    assert outcome.promoted, outcome.reason
    assert outcome.candidate[1] > outcome.champion[0]
    client = MlflowClient(mlflow_store)
    assert str(client.get_model_version_by_alias(NAME, "champion").version) == versions["good"]
    assert client.get_model_version(NAME, versions["good"]).tags[GATE_TAG] == "passed"
    [gate] = client.search_runs([client.get_experiment_by_name("sendwise-logs-uniform").experiment_id],
                                "params.gate = 'passed'")
    assert gate.data.tags["sendwise.kind"] == "evaluation"
    assert gate.data.metrics[f"{NAME}.v{versions['good']}/snips"] == pytest.approx(outcome.candidate[0])


def test_promoting_without_a_gate_registers_and_moves_the_alias(mlflow_store: str, run_ids: dict[str, str]) -> None:
    outcome = promote(run_id=run_ids["spare"], name="sendwise-spare", alias="staging", tracking_uri=mlflow_store)
    assert (outcome.promoted, outcome.previous, outcome.version) == (True, None, "1")
    assert alias_version("sendwise-spare", "staging", tracking_uri=mlflow_store) == "1"


def test_a_corrupt_or_missing_artifact_is_a_clear_error(mlflow_store: str, run_ids: dict[str, str]) -> None:
    version = register_policy(run_ids["spare"], name="sendwise-broken", tracking_uri=mlflow_store)
    uri = f"models:/sendwise-broken/{version}"
    location = MlflowClient(mlflow_store).get_model_version_download_uri("sendwise-broken", version)
    artifact = Path(location.removeprefix("file://")) / "artifacts" / "policy.npz"
    artifact.write_bytes(b"not a policy")
    with pytest.raises(ValueError, match=re.escape(f"{uri} (version {version}): policy artifact "
                                                   "'artifacts/policy.npz' is unreadable")):
        load_registered_policy(uri, tracking_uri=mlflow_store)
    artifact.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(f"{uri} (version {version}): policy artifact "
                                                          "'artifacts/policy.npz' is missing")):
        load_registered_policy(uri, tracking_uri=mlflow_store)


BAD_REFERENCES = [
    pytest.param("runs:/abc/policy", "model URI 'runs:/abc/policy' must look like models:/<name>@<alias>",
                 id="not-a-models-uri"),
    pytest.param(f"models:/{NAME}@retired", f"models:/{NAME}@retired: registered model '{NAME}' has no alias "
                 "'retired' (aliases: champion)", id="unknown-alias"),
    pytest.param(f"models:/{NAME}/99", f"models:/{NAME}/99: registered model '{NAME}' has no version 99",
                 id="unknown-version"),
    pytest.param("models:/nobody/1", "models:/nobody/1: there is no registered model 'nobody'", id="unknown-model"),
]


@pytest.mark.parametrize("uri, message", BAD_REFERENCES)
def test_bad_references_are_clear_errors(mlflow_store: str, versions: dict[str, str], uri: str, message: str) -> None:
    set_alias(NAME, versions["good"], "champion", tracking_uri=mlflow_store)
    with pytest.raises(ValueError, match=re.escape(message)):
        load_registered_policy(uri, tracking_uri=mlflow_store)


def test_a_run_without_a_policy_model_cannot_be_registered(mlflow_store: str, run_ids: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=re.escape(f"run {run_ids['parent']!r} logged no policy model")):
        register_policy(run_ids["parent"], tracking_uri=mlflow_store)


def test_sendwise_evaluate_takes_a_registry_uri(mlflow_store: str, versions: dict[str, str], logs: Path,
                                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_store)
    out = tmp_path / "evaluation.json"
    uri = f"models:/{NAME}/{versions['good']}"
    assert main(["evaluate", "--logs", str(logs), "--policy", uri, "--estimators", "ips", "--json", str(out)]) == 0
    ips = {row["estimator"]: row["estimate"] for row in json.loads(out.read_text())["rows"]}["ips"]
    assert ips > 0.5, f"the good policy pays on nearly every logged round of its arm; IPS = {ips}"


def test_the_gate_takes_an_estimator_spec(mlflow_store: str, run_ids: dict[str, str], versions: dict[str, str],
                                          logs: Path, capsys: pytest.CaptureFixture[str]) -> None:
    set_alias(NAME, versions["bad"], "champion", tracking_uri=mlflow_store)
    assert main(["promote", "--version", versions["good"], "--gate", "--logs", str(logs), "--estimator",
                 "ips(clip=50)", "--tracking-uri", mlflow_store]) == 0
    printed = capsys.readouterr().out
    assert f"promoted: {NAME} version {versions['good']} is @champion" in printed
    assert "ips(clip=50) on uniform.parquet: candidate version" in printed
    client = MlflowClient(mlflow_store)
    runs = client.search_runs([client.get_experiment_by_name("sendwise-logs-uniform").experiment_id],
                              "params.gate = 'passed'")
    assert any(f"{NAME}.v{versions['good']}/ips_clip_50" in run.data.metrics for run in runs)  # MLflow-safe key
    # A bad spec fails before the run is registered.
    assert main(["promote", "--run", run_ids["spare"], "--name", "sendwise-unregistered", "--gate", "--logs", str(logs),
                 "--estimator", "ips(clip=0)", "--tracking-uri", mlflow_store]) == 2
    assert "estimator spec 'ips(clip=0)': `clip` must be None or a number > 0; got 0" in capsys.readouterr().err
    assert alias_version("sendwise-unregistered", "champion", tracking_uri=mlflow_store) is None
    assert not client.search_registered_models("name = 'sendwise-unregistered'")
