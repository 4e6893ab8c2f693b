"""Model registry glue: register a run's policy, move aliases, load a registered policy.

Versions are promoted with aliases (``champion`` by default), never stages. Loading downloads the
version's ``.npz`` artifact and builds the policy in memory, so a server reads the registry at start-up
or on refresh only, and its decisions never wait for MLflow.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import yaml
from mlflow.artifacts import download_artifacts
from mlflow.entities import LoggedModel
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST, ErrorCode
from mlflow.tracking import MlflowClient

from ..ope import DEFAULT_GATE_ESTIMATOR, Estimator, as_estimator, gate
from ..policies import Policy, load_policy
from .mlflow_model import POLICY_ARTIFACT
from .model_uri import ModelUri
from .tracking import LOGGED_MODEL_NAME, POLICY_TAG, WORLD_TAG, log_evaluation, tracking_client

DEFAULT_MODEL_NAME = "sendwise-policy"
DEFAULT_ALIAS = "champion"
GATE_TAG = "sendwise.gate"  # on a gated version: "passed", or "rejected" (it never takes the alias)


def register_policy(run_id: str, *, name: str = DEFAULT_MODEL_NAME, alias: str | None = None,
                    tracking_uri: str | None = None) -> str:
    """Register the policy model logged by a (child) run as a version of ``name``; returns the version.

    A run already registered under ``name`` keeps its version rather than getting a new one. With
    ``alias``, the alias is moved to that version.
    """
    client = tracking_client(tracking_uri)
    model = policy_model(client, run_id)
    existing = client.search_model_versions(f"name = '{name}' and run_id = '{run_id}'")
    if existing:
        model_version = str(max(int(v.version) for v in existing))
    else:
        try:
            client.create_registered_model(name, description="sendwise policies: channel × send hour per customer")
        except MlflowException as exc:
            if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
        tags = client.get_run(run_id).data.tags
        # The artifact location, not models:/<id>: MLflow resolves the latter with the global tracking URI.
        model_version = str(client.create_model_version(
            name, source=model.artifact_location, run_id=run_id, model_id=model.model_id,
            tags={k: tags[k] for k in (POLICY_TAG, WORLD_TAG) if k in tags},
        ).version)
    if alias is not None:
        client.set_registered_model_alias(name, alias, model_version)
    return model_version


def set_alias(name: str, version: str | int, alias: str = DEFAULT_ALIAS, *, tracking_uri: str | None = None) -> None:
    """Point ``alias`` of the registered model ``name`` at ``version`` (e.g. promote a champion)."""
    client = tracking_client(tracking_uri)
    _model_version(client, ModelUri(name, version=str(version)))
    client.set_registered_model_alias(name, alias, str(version))


def alias_version(name: str, alias: str = DEFAULT_ALIAS, *, tracking_uri: str | None = None) -> str | None:
    """The version ``alias`` points at, or None when the model or the alias does not exist."""
    registered = _registered_model(tracking_client(tracking_uri), name)
    version = None if registered is None else registered.aliases.get(alias)
    return None if version is None else str(version)


def load_registered_policy(uri: str | ModelUri, *, tracking_uri: str | None = None,
                           random_state: np.random.Generator | int | None = None) -> tuple[Policy, str]:
    """The policy of ``models:/<name>@<alias>`` or ``models:/<name>/<version>``, and its version.

    Raises ValueError for a malformed URI, an unknown model, alias or version, or an artifact that is
    not a sendwise policy; FileNotFoundError when the version's policy artifact is missing.
    """
    parsed = uri if isinstance(uri, ModelUri) else ModelUri.parse(uri)
    client = tracking_client(tracking_uri)
    found = _model_version(client, parsed)
    source = client.get_model_version_download_uri(found.name, found.version)
    where = f"{parsed} (version {found.version})"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            mlmodel = Model.load(_download(source, "MLmodel", tmp, client.tracking_uri))
            artifact = mlmodel.flavors["python_function"]["artifacts"][POLICY_ARTIFACT]["path"]
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{where}: model file {exc}") from None
        except (KeyError, TypeError, ValueError, yaml.YAMLError, MlflowException) as exc:
            raise ValueError(f"{where}: not a sendwise policy model ({type(exc).__name__}: {exc})") from None
        try:
            local = _download(source, artifact, tmp, client.tracking_uri)
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{where}: policy artifact {exc}") from None
        try:
            return load_policy(local, random_state=random_state), str(found.version)
        except ValueError as exc:
            raise ValueError(f"{where}: policy artifact {artifact!r} is unreadable: {exc}") from None


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` did: the candidate version, whether ``alias`` now points at it, and why.

    ``candidate`` and ``champion`` are the off-policy ``(estimate, lo95, hi95)`` of the gate, when it ran,
    and ``estimator`` the spec of its estimator.
    """

    name: str
    alias: str
    version: str
    previous: str | None
    promoted: bool
    reason: str
    estimator: str | None = None
    candidate: tuple[float, float, float] | None = None
    champion: tuple[float, float, float] | None = None


def promote(*, run_id: str | None = None, version: str | int | None = None, name: str = DEFAULT_MODEL_NAME,
            alias: str = DEFAULT_ALIAS, logs: str | Path | None = None,
            estimator: Estimator | str = DEFAULT_GATE_ESTIMATOR, n_draws: int = 1000, n_bootstrap: int = 1000,
            seed: int = 0, tracking_uri: str | None = None) -> Promotion:
    """Register a run's policy (or take an existing version) and move ``alias`` to it.

    With ``logs`` the move is gated (``ope.gate``): the candidate's off-policy lower 95% bound
    (``estimator``, an ``Estimator`` or a spec such as ``"ips(clip=10)"``, on those logs) must beat the
    current holder's estimate, else the alias stays where it was. The gate's estimates are logged as an
    evaluation of the logs, and the version is tagged ``GATE_TAG`` = ``passed`` or ``rejected``, so a
    rejected candidate stays visibly apart from the versions that served.
    """
    if (run_id is None) == (version is None):
        raise ValueError("give exactly one of a run id and a version")
    estimator = as_estimator(estimator)  # a bad spec fails before anything is registered
    if run_id is not None:
        version = register_policy(run_id, name=name, tracking_uri=tracking_uri)
    else:
        _model_version(tracking_client(tracking_uri), ModelUri(name, version=str(version)))
    version = str(version)
    previous = alias_version(name, alias, tracking_uri=tracking_uri)
    outcome = Promotion(name, alias, version, previous, True, "no gate")
    if previous == version:
        return replace(outcome, reason=f"version {version} already is @{alias}")
    if logs is not None:
        outcome = _gate(outcome, Path(logs), estimator, n_draws, n_bootstrap, seed, tracking_uri)
        tracking_client(tracking_uri).set_model_version_tag(name, version, GATE_TAG,
                                                            "passed" if outcome.promoted else "rejected")
    if outcome.promoted:
        set_alias(name, version, alias, tracking_uri=tracking_uri)
    return outcome


def _gate(outcome: Promotion, logs: Path, estimator: Estimator, n_draws: int, n_bootstrap: int, seed: int,
          tracking_uri: str | None) -> Promotion:
    """Decide ``outcome.promoted`` with the off-policy gate on ``logs``, and log the gate's estimates."""
    versions = {"candidate": outcome.version, "champion": outcome.previous}
    policies = {role: load_registered_policy(ModelUri(outcome.name, version=v), tracking_uri=tracking_uri,
                                             random_state=seed)[0]
                for role, v in versions.items() if v is not None}
    result = gate(policies["candidate"], policies.get("champion"), logs, estimator=estimator, n_draws=n_draws,
                  n_bootstrap=n_bootstrap, seed=seed)
    if result.champion is None:
        reason = f"no version is @{outcome.alias} yet; version {outcome.version} takes it"
    else:
        reason = result.describe(f"candidate version {outcome.version}", f"champion version {outcome.previous}")
    estimates = {"candidate": result.candidate, "champion": result.champion}
    log_evaluation({f"{outcome.name}.v{versions[role]}": {result.estimator: bounds}
                    for role, bounds in estimates.items() if bounds is not None},
                   dataset=logs.stem, tracking_uri=tracking_uri,
                   params={"logs": str(logs), "gate": "passed" if result.passed else "failed", "alias": outcome.alias,
                           "candidate_version": outcome.version, "champion_version": outcome.previous or "none"})
    return replace(outcome, promoted=result.passed, reason=reason, estimator=result.estimator,
                   candidate=result.candidate, champion=result.champion)


def policy_model(client: MlflowClient, run_id: str) -> LoggedModel:
    """The policy model a run logged; ValueError naming the run when there is none."""
    try:
        run = client.get_run(run_id)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        raise ValueError(f"run {run_id!r} does not exist in {client.tracking_uri}") from None
    for output in run.outputs.model_outputs if run.outputs else ():
        model = client.get_logged_model(output.model_id)
        if model.name == LOGGED_MODEL_NAME:
            return model
    raise ValueError(f"run {run_id!r} logged no policy model; pass a run of one policy × seed (a child run of "
                     "a simulation) whose policy decides without the simulator's truth (not an oracle)")


def _registered_model(client: MlflowClient, name: str) -> RegisteredModel | None:
    try:
        return client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        return None


def _model_version(client: MlflowClient, uri: ModelUri) -> ModelVersion:
    """The model version an alias or a number names; ValueError naming the URI when it does not exist."""
    name, alias, version = uri.name, uri.alias, uri.version
    registered = _registered_model(client, name)
    if registered is None:
        raise ValueError(f"{uri}: there is no registered model {name!r} in {client.tracking_uri}")
    if alias is not None:
        if alias not in registered.aliases:
            known = ", ".join(sorted(registered.aliases)) or "none"
            raise ValueError(f"{uri}: registered model {name!r} has no alias {alias!r} (aliases: {known})")
        version = registered.aliases[alias]
    try:
        return client.get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code != ErrorCode.Name(RESOURCE_DOES_NOT_EXIST):
            raise
        raise ValueError(f"{uri}: registered model {name!r} has no version {version}") from None


def _download(source: str, path: str, dst: str, tracking_uri: str) -> str:
    """Download one file of a model; FileNotFoundError naming it (and MLflow's reason) when that fails."""
    try:
        return download_artifacts(artifact_uri=f"{source.rstrip('/')}/{path}", dst_path=dst, tracking_uri=tracking_uri)
    except (OSError, MlflowException) as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise FileNotFoundError(f"{path!r} is missing at {source} ({reason})") from None
