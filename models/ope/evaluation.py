"""Off-policy evaluation of a policy on logged decisions, end to end.

Resolve the target (a policy object, a saved policy, a policy name, or given probabilities), get its
action probabilities on the logged contexts (``Policy.propensities``: for a Thompson policy, the share of
a large bank of posterior draws in which each arm is best, plus the exploration floor), cross-fit a reward model
when DM or DR need one, run the estimators and tabulate estimate, bootstrap interval, effective sample
size and largest importance weight, next to the logging policy's own mean reward.

When the log records what the logging policy chose from (``LoggedFeedback.allowed``), the target
decides under exactly those masks, and the result counts the decisions on which the target goes
outside the logging policy's support (``support_violations``), which the reweighting estimators
assume never happens.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..domain import Catalog, DecisionBatch, Economics, build_batch
from ..policies import POLICIES, Policy, load_policy, make_policy
from ..validation import check_rows
from .estimators import Estimator, LoggedMean, cross_fit_q_hat
from .logged import LoggedFeedback, read_logs
from .spec import as_estimators

DEFAULT_ESTIMATORS = ("ips", "snips", "dm", "dr")
ALLOWED_CHANNELS_COLUMN = "allowed_channels"

@dataclass(frozen=True)
class EstimateRow:
    """One estimator's answer: value, (1 − alpha) bootstrap interval and weight diagnostics.

    ``estimator`` is the estimator's spec (``ips(clip=10)``), so variants of one estimator differ.
    """

    estimator: str
    estimate: float
    low: float
    high: float
    effective_sample_size: float
    max_weight: float


@dataclass(frozen=True)
class EvaluationResult:
    """Every estimator's answer for one target on one log; the first row is the logging policy itself."""

    target: str
    logs: str
    n_rounds: int
    n_actions: int
    alpha: float
    n_bootstrap: int
    rows: tuple[EstimateRow, ...]
    support_violations: int | None = None  # see ``support_violations``; None when the log cannot tell

    def estimate(self, estimator: str) -> EstimateRow:
        """The row of ``estimator`` by spec (``"dr"``, ``"ips(clip=10)"``; ``"logged"``: the logging policy)."""
        for row in self.rows:
            if row.estimator == estimator:
                return row
        raise KeyError(f"no estimate for {estimator!r}; have: {', '.join(r.estimator for r in self.rows)}")

    def bounds(self) -> dict[str, tuple[float, float, float]]:
        """Estimator → (estimate, low, high), the shape experiment trackers log."""
        return {r.estimator: (r.estimate, r.low, r.high) for r in self.rows}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly: NaN diagnostics (estimators that do not reweight) become None."""
        data = asdict(self)
        data["rows"] = [{k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
                        for row in data["rows"]]
        return data

    def format_table(self) -> str:
        level = f"{1 - self.alpha:.0%}"
        width = max(10, *(len(r.estimator) for r in self.rows))
        lines = [
            f"target: {self.target}",
            f"logs:   {self.logs} ({self.n_rounds:,} decisions, {self.n_actions} actions)",
            "",
            f"{'estimator':<{width}} {'estimate':>10} {level + ' interval':>22} {'ESS':>10} {'max weight':>11}",
        ]
        for r in self.rows:
            ess = "-" if math.isnan(r.effective_sample_size) else f"{r.effective_sample_size:,.0f}"
            weight = "-" if math.isnan(r.max_weight) else f"{r.max_weight:,.2f}"
            interval = f"[{r.low:.5f}, {r.high:.5f}]"
            lines.append(f"{r.estimator:<{width}} {r.estimate:>10.5f} {interval:>22} {ess:>10} {weight:>11}")
        lines += ["", f"intervals: percentile bootstrap over decisions, {self.n_bootstrap:,} resamples; "
                      "'logged' is the logging policy's mean reward"]
        if self.support_violations is not None:
            lines.append(f"support: on {self.support_violations:,} of {self.n_rounds:,} decisions the target gives "
                         "positive probability to an action outside the logging policy's support "
                         "(ips, snips and dr assume none)")
        return "\n".join(lines)


def resolve_policy(ref: str, catalog: Catalog | None = None, *,
                   random_state: np.random.Generator | int | None = None) -> Policy:
    """The policy ``ref`` names: a saved ``.npz`` file, or a name in ``POLICIES`` built on ``catalog``.

    A policy built by name maximises the reward of the logs (``Economics.logged_reward``: the first
    outcome at 1, the others at 0, no cost). Untrained, it is a baseline; evaluate a saved policy to
    judge a trained one. A registered policy (``models:/…``) is loaded by the registry glue
    (``sendwise.models.mlops.load_registered_policy``) and passed to ``evaluate_logs`` as an object.
    """
    if ":/" in ref:
        scheme = ref.split(":/", 1)[0]
        raise ValueError(f"no loader for {scheme!r} policy URIs (known schemes: models, loaded by the registry "
                         "into a Policy); give a saved policy .npz file or a policy name")
    if ref in POLICIES:
        if catalog is None:
            raise ValueError(f"policy {ref!r} is built on the catalog of the logs, but these logs have none "
                             "(plain actions); give a saved policy or target probabilities instead")
        try:
            return make_policy(ref, catalog, Economics.logged_reward(catalog), random_state=random_state)
        except ValueError as exc:  # a policy with required parameters, e.g. a playbook
            raise ValueError(f"policy {ref!r} cannot be built with default parameters ({exc}); "
                             "save one with its parameters and give the .npz file") from None
    if ref.endswith(".npz") or Path(ref).is_file():
        return load_policy(ref, random_state=random_state)
    raise ValueError(f"unknown policy {ref!r}; give a saved policy .npz file or one of: {', '.join(sorted(POLICIES))}")


def decision_batch(log: LoggedFeedback) -> DecisionBatch:
    """The decision requests behind a catalog log: cells from region / industry / campaign_type, cost row
    from region, mask the log's own ``allowed`` arms when it has them, else from ``allowed_channels``
    (channel names joined by ``|``; all channels if absent).
    """
    catalog = _catalog_of(log)
    names = {column: _context_names(log.context, column, getattr(catalog, field))
             for column, field in (("region", "regions"), ("industry", "industries"),
                                   ("campaign_type", "campaign_types"))}
    if log.allowed is not None:
        return build_batch(catalog, *names.values(), mask=log.allowed)
    return build_batch(catalog, *names.values(), channel_allowed=_allowed_channels(log.context, catalog))


def target_probabilities(policy: Policy, log: LoggedFeedback, *, n_draws: int = 1000) -> np.ndarray:
    """π(a | x_i) for every logged row and arm, float64 (n_rounds, n_arms), from ``policy.propensities``.

    Rows with the same cell, cost row and mask get the same probabilities, computed once per distinct
    request; a Thompson policy draws them from one bank of ``n_draws`` posterior draws per cell.
    """
    if _catalog_of(log) != policy.catalog:
        raise ValueError("the policy's catalog differs from the catalog of the logs; read the logs with "
                         "the policy's catalog")
    batch = decision_batch(log)
    keys = np.column_stack([batch.cell_idx, batch.cost_row_idx, batch.mask])
    unique, inverse = np.unique(keys, axis=0, return_inverse=True)
    distinct = DecisionBatch(cell_idx=unique[:, 0], cost_row_idx=unique[:, 1], mask=unique[:, 2:].astype(bool))
    return policy.propensities(distinct, bank_draws=n_draws)[inverse.reshape(-1)]


def support_violations(log: LoggedFeedback, target_probs: np.ndarray) -> int | None:
    """How many rows give the target positive probability on an action outside the logging support.

    The logging support of a row is unknown in full (only its size is logged), so a row counts when it
    certainly leaves it: the target gives probability to an action outside ``log.allowed``, or to more
    allowed actions than ``log.support_size``. None when the log has neither.

    Parameters
    ----------
    log : LoggedFeedback
    target_probs : ndarray of shape (n_rounds, n_actions), float64

    Returns
    -------
    int or None

    Examples
    --------
    >>> log = LoggedFeedback(action=[0, 1], propensity=[1.0, 1.0], reward=[1.0, 0.0], n_actions=2,
    ...                      allowed=np.array([[True, False], [False, True]]))
    >>> support_violations(log, np.array([[0.5, 0.5], [0.0, 1.0]]))
    1
    """
    if log.allowed is None and log.support_size is None:
        return None
    positive = np.asarray(target_probs) > 0
    allowed = np.ones_like(positive) if log.allowed is None else log.allowed
    outside = (positive & ~allowed).any(axis=1)
    if log.support_size is not None:
        size = np.where(np.isnan(log.support_size), np.inf, log.support_size)
        outside |= (positive & allowed).sum(axis=1) > size
    return int(outside.sum())


def context_features(context: pd.DataFrame) -> np.ndarray:
    """Reward-model features, float64 (n_rounds, n_features): numeric columns as they are, others one-hot."""
    if context.shape[1] == 0:
        return np.zeros((len(context), 0))
    return pd.get_dummies(context, dtype=np.float64).to_numpy(dtype=np.float64)


def evaluate(log: LoggedFeedback, target_probs: np.ndarray, *, target: str = "target", logs: str = "logs",
             estimators: str | Sequence[Estimator | str] = DEFAULT_ESTIMATORS, reward_model: Any = None,
             n_folds: int = 5, alpha: float = 0.05, n_bootstrap: int = 1000,
             random_state: int | None = None) -> EvaluationResult:
    """Run ``estimators`` for ``target_probs`` on ``log``: ``Estimator`` objects or specs (``"ips(clip=10)"``,
    see ``ope.spec``), or one comma-separated string of specs. Each row is labelled by its estimator's spec.

    DM and DR use a reward model cross-fitted on the context (``context_features``) and the action;
    ``reward_model`` replaces the default (any scikit-learn classifier or regressor). The result also
    counts the rows where the target leaves the logged support (``support_violations``) without failing.
    """
    chosen = as_estimators(estimators)
    target_probs = np.asarray(target_probs, dtype=np.float64)
    if target_probs.shape != (log.n_rounds, log.n_actions):
        raise ValueError(f"target probabilities must have shape (n_rounds, n_actions) = "
                         f"{(log.n_rounds, log.n_actions)}; got {target_probs.shape}")
    q_hat = None
    if any(est.needs_q_hat for est in chosen):
        q_hat = cross_fit_q_hat(context_features(log.context), log.action, log.reward, log.n_actions,
                                model=reward_model, n_folds=n_folds, random_state=random_state)
    rounds = (log.reward, log.action, log.propensity, target_probs, q_hat)
    rows = []
    for est in (LoggedMean(), *chosen):
        low, high = est.estimate_interval(*rounds, alpha=alpha, n_bootstrap=n_bootstrap, random_state=random_state)
        rows.append(EstimateRow(est.spec, est.estimate_policy_value(*rounds), low, high, *est.diagnostics(*rounds)))
    return EvaluationResult(target, logs, log.n_rounds, log.n_actions, alpha, n_bootstrap, tuple(rows),
                            support_violations(log, target_probs))


def evaluate_logs(logs: str | Path, *, policy: str | Policy | None = None, target_probs: str | Path | None = None,
                  estimators: str | Sequence[Estimator | str] = DEFAULT_ESTIMATORS, n_draws: int = 1000,
                  n_bootstrap: int = 1000, seed: int = 0, label: str | None = None) -> EvaluationResult:
    """Evaluate a policy (an object, or a reference ``resolve_policy`` reads) or a ``.npy`` of target
    probabilities on a log file.

    A policy named in ``POLICIES`` is built on the logs' catalog; a policy object or a saved one brings
    its own catalog, which then reads the logs. ``label`` names the policy in the result (default: the
    reference, or the object's ``name``), e.g. the registry URI it was loaded from.
    """
    logs = Path(logs)
    if target_probs is not None and policy is None:
        log = read_logs(logs)
        probs, target = _load_target_probs(Path(target_probs)), f"target probabilities {Path(target_probs).name}"
    elif policy is not None and target_probs is None:
        label = label or (policy if isinstance(policy, str) else policy.name)
        if isinstance(policy, str) and policy in POLICIES:
            log = read_logs(logs)
            resolved = resolve_policy(policy, log.catalog, random_state=seed)
        else:
            resolved = resolve_policy(policy, random_state=seed) if isinstance(policy, str) else policy
            log = read_logs(logs, resolved.catalog)
        probs, target = target_probabilities(resolved, log, n_draws=n_draws), f"policy {label}"
    else:
        raise ValueError("give exactly one of a policy and target probabilities")
    return evaluate(log, probs, target=target, logs=logs.name, estimators=estimators,
                    n_bootstrap=n_bootstrap, random_state=seed)


def _catalog_of(log: LoggedFeedback) -> Catalog:
    if log.catalog is None:
        raise ValueError("these logs have plain actions and no catalog, so a sendwise policy cannot be applied "
                         "to them; give target probabilities instead")
    return log.catalog


def _context_names(context: pd.DataFrame, column: str, names: tuple[str, ...]) -> list[str]:
    """The logged names of a context column; a catalog with one name needs none."""
    if column in context.columns:
        return context[column].astype(str).tolist()  # LoggedFeedback checked the names
    if len(names) > 1:
        raise ValueError(f"column {column!r} is missing from the logs, but the catalog has {len(names)} of them "
                         f"({', '.join(names)}); the policy cannot tell the rows' cells apart")
    return [names[0]] * len(context)


def _allowed_channels(context: pd.DataFrame, catalog: Catalog) -> np.ndarray:
    if ALLOWED_CHANNELS_COLUMN not in context.columns:
        return np.ones((len(context), len(catalog.channels)), dtype=np.bool_)
    listed = context[ALLOWED_CHANNELS_COLUMN].fillna("").astype(str).str.get_dummies(sep="|").astype(bool)
    listed = listed.drop(columns=[""], errors="ignore")  # an empty list: no channel allowed
    unknown = listed.drop(columns=[c for c in catalog.channels if c in listed.columns])
    check_rows(f"column {ALLOWED_CHANNELS_COLUMN!r}", context[ALLOWED_CHANNELS_COLUMN].to_numpy(dtype=object),
               ~unknown.any(axis=1).to_numpy(), f"must list channels of the catalog ({', '.join(catalog.channels)}) "
               "joined by '|'")
    return listed.reindex(columns=list(catalog.channels), fill_value=False).to_numpy(dtype=np.bool_)


def _load_target_probs(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"target probabilities file {str(path)!r} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"target probabilities file {str(path)!r} is not a .npy array: {exc}") from None
