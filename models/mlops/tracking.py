"""MLflow tracking of simulations and off-policy evaluations: on by default, no server needed.

The tracking URI is, first match wins: the ``tracking_uri`` argument, ``MLFLOW_TRACKING_URI``, or
``sqlite:///<home>/mlflow.db`` in the sendwise home (``$SENDWISE_HOME``, else ``./.sendwise``; see
``sendwise.models.home``). A SQLite store keeps its artifacts in ``mlartifacts/`` next to the database
file (so ``<home>/mlartifacts`` by default); other stores use their own root.

One experiment per world (``sendwise-world-<name>``) or logs dataset (``sendwise-logs-<name>``, and
``sendwise-lift-<name>`` for its lift reports); one
parent run per command with one child run per policy (× seed for simulations). Runs carry the tags
``sendwise.kind`` (``simulation`` or ``evaluation``), ``sendwise.world`` or ``sendwise.dataset``, and
``sendwise.policy`` on child runs. Every experiment sendwise creates is tagged as classic model
development (``mlflow.experimentKind``), so ``mlflow ui`` opens it on its runs table, not on GenAI traces.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric, Param, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from ..home import sendwise_home
from ..home import tracking_uri as home_tracking_uri
from .mlflow_model import save_policy_model, servable

if TYPE_CHECKING:
    from ..experiments import LiftReport
    from ..sim import PolicyRun, SimulationResult

# MLflow 3's UI opens an experiment by its kind: GenAI ones on traces, these on the runs table.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
CLASSIC_ML_KIND = "custom_model_development"
KIND_TAG = "sendwise.kind"
WORLD_TAG = "sendwise.world"
DATASET_TAG = "sendwise.dataset"
POLICY_TAG = "sendwise.policy"
SIMULATION = "simulation"
EVALUATION = "evaluation"
LIFT = "lift"
LOGGED_MODEL_NAME = "policy"
# Not the model's name: MLflow reads runs:/<id>/<name> as the logged model <name> (via its global tracking URI).
POLICY_STATE_DIR = "policy_state"
DAILY_PREFIX = "daily/"
BOUND_SUFFIXES = ("", "_lo95", "_hi95")
KEY_METRICS = ("net_value", "regret", "cost", "clicks", "unsubscribes")
# MLflow's log_batch limits: 1000 metrics and 100 params per request.
_MAX_METRICS, _MAX_PARAMS = 1000, 100


def default_tracking_uri() -> str:
    """``sqlite:///<home>/mlflow.db`` of the sendwise home: a file store needs no server and no opt-in."""
    return sendwise_home().tracking_uri


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """The explicit URI, else ``MLFLOW_TRACKING_URI``, else :func:`default_tracking_uri`."""
    return home_tracking_uri(tracking_uri)


def tracking_client(tracking_uri: str | None = None) -> MlflowClient:
    """A client for tracking and registry on the resolved URI; creates a SQLite file's folder."""
    uri = resolve_tracking_uri(tracking_uri)
    database = _sqlite_path(uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def world_experiment(world: str) -> str:
    """Name of the experiment that holds a world's simulations."""
    return f"sendwise-world-{world}"


def dataset_experiment(dataset: str) -> str:
    """Name of the experiment that holds the off-policy evaluations on a logs dataset."""
    return f"sendwise-logs-{dataset}"


def lift_experiment(dataset: str) -> str:
    """Name of the experiment that holds the lift reports of a logs dataset (apart from its evaluations, so
    ``sendwise compare`` keeps reading those)."""
    return f"sendwise-lift-{dataset}"


def experiment_id(client: MlflowClient, name: str) -> str:
    """Id of the experiment ``name``, created (with its artifacts beside a SQLite store) if missing.

    The experiment is marked as classic model development; one created before sendwise did so gets the
    tag now, unless someone gave it a kind of their own.
    """
    found = client.get_experiment_by_name(name)
    if found is not None:
        if EXPERIMENT_KIND_TAG not in found.tags:
            client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, CLASSIC_ML_KIND)
        return str(found.experiment_id)
    database = _sqlite_path(client.tracking_uri)
    location = None
    if database is not None:
        location = (database.parent / "mlartifacts" / re.sub(r"[^\w.-]+", "-", name)).as_uri()
    try:
        return str(client.create_experiment(name, artifact_location=location,
                                            tags={EXPERIMENT_KIND_TAG: CLASSIC_ML_KIND}))
    except MlflowException as exc:  # another process created it first
        if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
            raise
        return str(client.get_experiment_by_name(name).experiment_id)


def log_simulation(result: SimulationResult, *, tracking_uri: str | None = None,
                   experiment: str | None = None) -> str:
    """Log a simulation: a parent run for the command, a child run per policy × seed; returns the parent id.

    Parent: params (world, objective, policies, seeds, customers, days, version, git commit), summary metrics
    ``<policy>/<metric>`` with ``_lo95``/``_hi95`` bounds across seeds, the plots, the world file and
    ``result.json`` (``SimulationResult.to_dict`` with each run's MLflow ``run_id``). Child: the same
    context plus the policy and its hyper-parameters (``policy.*``), per-day metrics ``daily/<metric>``
    (step = day), final totals, the policy's ``.npz`` under ``policy_state/`` and, unless it needs the
    simulator's truth (the oracles), the policy as a pyfunc model named ``policy``, ready for the registry.
    """
    client = tracking_client(tracking_uri)
    world = result.world.name
    exp_id = experiment_id(client, experiment or world_experiment(world))
    context = {"world": world, "customers": result.n_customers, "days": result.n_days,
               "objective": result.world.economics.describe(result.world.catalog), **provenance()}
    policies = list(dict.fromkeys(run.policy for run in result.runs))
    tags = {KIND_TAG: SIMULATION, WORLD_TAG: world}
    name = f"simulate {world} {result.n_customers}x{result.n_days}d"
    params = {**context, "policies": ",".join(policies), "seeds": ",".join(map(str, result.seeds))}
    with tracked_run(client, exp_id, name, tags, params) as parent_id:
        child_ids = []
        for run in result.runs:
            child_params = {**context, "policy": run.policy, "seed": run.seed,
                            **{f"policy.{k}": v for k, v in run.params.items()}}
            with tracked_run(client, exp_id, f"{run.policy} seed={run.seed}", {**tags, POLICY_TAG: run.policy},
                      child_params, parent_id=parent_id) as child_id:
                _log_policy_run(client, exp_id, child_id, run, result.n_days)
            child_ids.append(child_id)
        log_batch(client, parent_id, metrics=summary_metrics(result.summary))
        for plot in result.plots:
            client.log_artifact(parent_id, os.fspath(plot), "plots")
        client.log_artifact(parent_id, os.fspath(result.world.path), "world")
        data = result.to_dict()
        for entry, child_id in zip(data["runs"], child_ids, strict=True):
            entry["run_id"] = child_id
        client.log_text(parent_id, json.dumps(data, indent=1, default=_plain), "result.json")
    return parent_id


def log_evaluation(estimates: Mapping[str, Mapping[str, Sequence[float]]], *, dataset: str,
                   params: Mapping[str, Any] | None = None, artifacts: Iterable[str | Path] = (),
                   tracking_uri: str | None = None, experiment: str | None = None) -> str:
    """Log off-policy estimates: a parent run, a child run per policy; returns the parent run id.

    ``estimates`` maps policy → estimator → ``(estimate, lo95, hi95)``, each logged on the policy's
    child run as ``<estimator>``, ``<estimator>_lo95`` and ``<estimator>_hi95``. ``params`` (e.g. the
    logs file, their size, the policy references) and ``artifacts`` (files) go on the parent run.
    """
    client = tracking_client(tracking_uri)
    exp_id = experiment_id(client, experiment or dataset_experiment(dataset))
    tags = {KIND_TAG: EVALUATION, DATASET_TAG: dataset}
    context = {"dataset": dataset, **provenance()}
    with tracked_run(client, exp_id, f"evaluate {dataset}", tags, {**context, **(params or {})}) as parent_id:
        for policy, by_estimator in estimates.items():
            with tracked_run(client, exp_id, f"{policy} on {dataset}", {**tags, POLICY_TAG: policy},
                      {**context, "policy": policy}, parent_id=parent_id) as child_id:
                log_batch(client, child_id, metrics=_bound_metrics(by_estimator))
        log_batch(client, parent_id, metrics=summary_metrics(estimates))
        for path in artifacts:
            client.log_artifact(parent_id, os.fspath(path))
    return parent_id


def log_lift(report: LiftReport, *, dataset: str, params: Mapping[str, Any] | None = None,
             text: str | None = None, tracking_uri: str | None = None, experiment: str | None = None) -> str:
    """Log a lift report as one run in ``sendwise-lift-<dataset>`` (tag ``sendwise.kind=lift``); returns its id.

    Metrics: ``<group>/customers`` and ``<group>/<metric>_per_customer``; each difference as
    ``<treatment>_minus_<control>/<metric>`` with ``_lo95``/``_hi95`` bounds, its ``…_mde`` and, with
    CUPED, ``…_cuped`` (bounded), ``…_cuped_mde`` and ``…_variance_reduction``; ``srm_p_value`` and
    ``srm_flagged``; ``shadow_agreement`` (bounded) in shadow mode. ``lift.json`` (and ``lift.txt``, the
    printed table, when given) as artifacts.
    """
    client = tracking_client(tracking_uri)
    exp_id = experiment_id(client, experiment or lift_experiment(dataset))
    timestamp = _now_ms()
    values: dict[str, float] = {}
    for group in report.groups:
        values[f"{group.group}/customers"] = group.customers
        values |= {f"{group.group}/{m}_per_customer": v for m, v in group.per_customer.items()}
    bounds: dict[str, tuple[float, float, float]] = {}
    for d in report.differences:
        key = f"{d.treatment}_minus_{d.control}/{d.metric}"
        bounds[key] = (d.estimate, d.low, d.high)
        values[f"{key}_mde"] = d.mde
        if d.cuped_estimate is not None:
            bounds[f"{key}_cuped"] = (d.cuped_estimate, d.cuped_low, d.cuped_high)
            values |= {f"{key}_cuped_mde": d.cuped_mde, f"{key}_variance_reduction": d.variance_reduction}
    values |= {"srm_p_value": report.sample_ratio.p_value, "srm_flagged": float(report.sample_ratio.flagged)}
    if report.shadow is not None:
        bounds["shadow_agreement"] = (report.shadow.agreement, report.shadow.low, report.shadow.high)
    metrics = [Metric(_metric_key(k), float(v), timestamp, 0) for k, v in values.items()]
    metrics += _bound_metrics(bounds)
    tags = {KIND_TAG: LIFT, DATASET_TAG: dataset}
    with tracked_run(client, exp_id, f"lift {dataset}", tags, {"dataset": dataset, **provenance(),
                                                                **(params or {})}) as run_id:
        log_batch(client, run_id, metrics=metrics)
        client.log_text(run_id, json.dumps(report.to_dict(), indent=1), "lift.json")
        if text is not None:
            client.log_text(run_id, text + "\n", "lift.txt")
    return run_id


def log_policy_model(client: MlflowClient, exp_id: str, run_id: str, policy_file: str | Path,
                     seed: int | None = None) -> str:
    """Log a saved policy as the pyfunc model ``policy`` of a run (an MLflow logged model); returns its id."""
    model = client.create_logged_model(exp_id, name=LOGGED_MODEL_NAME, source_run_id=run_id,
                                       model_type="sendwise-policy")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            local = save_policy_model(policy_file, Path(tmp) / "model", seed=seed, mlflow_model=Model(
                artifact_path=model.artifact_location, model_uuid=model.model_id, run_id=run_id,
                model_id=model.model_id,
            ))
            client.log_model_artifacts(model.model_id, os.fspath(local))
    except BaseException:
        client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    return str(model.model_id)


def _bound_metrics(bounds: Mapping[str, Sequence[float]], prefix: str = "") -> list[Metric]:
    """``<prefix><name>``, ``…_lo95`` and ``…_hi95`` metrics from name → (value, lo95, hi95)."""
    timestamp = _now_ms()
    return [Metric(f"{prefix}{_metric_key(name)}{suffix}", float(value), timestamp, 0)
            for name, values in bounds.items()
            for suffix, value in zip(BOUND_SUFFIXES, values, strict=True)]


def _metric_key(name: str) -> str:
    """``name`` as MLflow takes it in a metric key: an estimator spec ``ips(clip=10)`` becomes ``ips_clip_10``."""
    return re.sub(r"[^\w.\- :/]+", "_", name.replace(")", ""))


def summary_metrics(summary: Mapping[str, Mapping[str, Sequence[float]]]) -> list[Metric]:
    """A parent run's ``<policy>/<name>`` metrics (with bounds), what ``compare.compare_latest`` reads back."""
    return [m for policy, bounds in summary.items() for m in _bound_metrics(bounds, f"{policy}/")]


def _log_policy_run(client: MlflowClient, exp_id: str, run_id: str, run: PolicyRun, n_days: int) -> None:
    """Per-day metrics, totals, the policy state and its pyfunc model for one policy × seed."""
    timestamp = _now_ms()
    metrics = [
        Metric(f"{DAILY_PREFIX}{name}", float(value), timestamp, day)
        for name, series in run.daily.items()
        for day, value in enumerate(series.tolist())
    ]
    metrics += [Metric(name, float(value), timestamp, n_days) for name, value in run.totals.items()]
    log_batch(client, run_id, metrics=metrics)
    if run.policy_state is not None:
        client.log_artifact(run_id, os.fspath(run.policy_state), POLICY_STATE_DIR)
        if servable(run.policy_state):
            log_policy_model(client, exp_id, run_id, run.policy_state, seed=run.seed)


@contextmanager
def tracked_run(client: MlflowClient, exp_id: str, name: str, tags: Mapping[str, str], params: Mapping[str, Any],
         parent_id: str | None = None) -> Iterator[str]:
    """Create a run with tags and params; mark it FINISHED, or FAILED if the body raises."""
    all_tags = {**tags, MLFLOW_RUN_NAME: name}
    if parent_id is not None:
        all_tags[MLFLOW_PARENT_RUN_ID] = parent_id
    run_id = client.create_run(exp_id, tags=all_tags, run_name=name).info.run_id
    try:
        log_batch(client, run_id, params=params)
        yield run_id
    except BaseException:
        client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        raise
    client.set_terminated(run_id)


def log_batch(client: MlflowClient, run_id: str, *, metrics: Sequence[Metric] = (),
               params: Mapping[str, Any] | None = None) -> None:
    """``log_batch`` in requests that respect MLflow's size limits."""
    param_list = [Param(k, _param_value(v)) for k, v in (params or {}).items()]
    for start in range(0, len(param_list), _MAX_PARAMS):
        client.log_batch(run_id, params=param_list[start:start + _MAX_PARAMS])
    for start in range(0, len(metrics), _MAX_METRICS):
        client.log_batch(run_id, metrics=list(metrics[start:start + _MAX_METRICS]))


def _param_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=_plain)


def _plain(value: Any) -> Any:
    """JSON fallback for numpy scalars and arrays, paths and anything else with a str."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def provenance() -> dict[str, str]:
    """sendwise version, and the git commit of the source when it lives in a checkout."""
    out = {"sendwise_version": version("sendwise")}
    commit = _git_commit()
    if commit:
        out["git_commit"] = commit
    return out


@cache
def _git_commit() -> str | None:
    try:
        done = subprocess.run(["git", "-C", os.fspath(Path(__file__).resolve().parent), "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores)."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite" or parsed.path in ("", "/", "/:memory:"):
        return None
    return Path(unquote(parsed.path[1:]))  # sqlite:///rel.db is relative, sqlite:////abs.db absolute


def _now_ms() -> int:
    return int(time.time() * 1000)
