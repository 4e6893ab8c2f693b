"""Off-policy evaluation of a policy on logged decisions, end to end.

Resolve the target (a policy object, a saved policy, a policy name, or given probabilities), get its
action probabilities on the logged contexts (``Policy.propensities``: for a Thompson policy, the share of
a large bank of posterior draws in which each arm is best, plus the exploration floor), cross-fit a reward model
when DM or DR need one, run the estimators and tabulate estimate, bootstrap interval, effective sample
size and largest importance weight, next to the logging policy's own mean reward. Targets written as
text (``ope.targets``: ``always:<action>``, ``uniform``, ``logged``, ``trained``) are evaluated together
in one table (``evaluate_specs``), a trained one on rounds held out from its training.

When the log records what the logging policy chose from (``LoggedFeedback.allowed``), the target
decides under exactly those masks, and the result counts the decisions on which the target goes
outside the logging policy's support (``support_violations``), which the reweighting estimators
assume never happens.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from ..domain import Catalog, DecisionBatch, Economics, build_batch
from ..policies import POLICIES, Policy, load_policy, make_policy
from ..validation import check_rows
from .estimators import Estimator, LoggedMean, cross_fit_q_hat
from .logged import LoggedFeedback, read_logs
from .spec import as_estimators
from .targets import (
    DEFAULT_TEST_SIZE,
    LOGGED,
    TRAINED,
    Split,
    TargetSpec,
    fit_trained_policy,
    fixed_target_probs,
    needs_split,
    split_rounds,
    trained_target_probs,
)

DEFAULT_ESTIMATORS = ("ips", "snips", "dm", "dr")
DEFAULT_REFITS = 50
ALLOWED_CHANNELS_COLUMN = "allowed_channels"
LOGGING_POLICY = "logging policy"


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
    n_refits: int | None = None  # resamples that refitted the reward model; None without DM or DR

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
        """The table of this target alone: its name, the logs, a row per estimator, the notes."""
        return "\n".join([f"target: {self.target}", self.logs_line(), "",
                          *_table_lines(self.alpha, [("", r) for r in self.rows]), "", *self.notes()])

    def logs_line(self) -> str:
        return f"logs:   {self.logs} ({self.n_rounds:,} decisions, {self.n_actions} actions)"

    def notes(self, *, support: bool = True) -> list[str]:
        """How the intervals were computed and, with ``support``, this target's support violations."""
        how = f"intervals: percentile bootstrap over decisions, {self.n_bootstrap:,} resamples"
        if self.n_refits is not None:
            how += (f"; for estimators with a reward model (dm, dr, ...), normal interval from the spread over "
                    f"{self.n_refits:,} resamples, each refitting the reward model")
        lines = [how + "; 'logged' is the logging policy's mean reward"]
        if support and self.support_violations is not None:
            lines.append(self.support_line())
        return lines

    def support_line(self, who: str = "the target") -> str:
        return (f"support: on {self.support_violations:,} of {self.n_rounds:,} decisions {who} gives "
                "positive probability to an action outside the logging policy's support "
                "(ips, snips and dr assume none)")


@dataclass(frozen=True)
class EvaluationTable:
    """Several targets evaluated on the same log, and the split a trained target needed (None: no split).

    Every result starts with the same ``logged`` row (the logging policy), which the table prints once.
    """

    results: tuple[EvaluationResult, ...]
    split: Split | None = None

    def bounds(self) -> dict[str, dict[str, tuple[float, float, float]]]:
        """Target → estimator → (estimate, low, high); the logging policy under ``LOGGING_POLICY``."""
        first = self.results[0]
        table = {LOGGING_POLICY: {LoggedMean.name: first.bounds()[LoggedMean.name]}}
        for result in self.results:
            if result.target != LOGGING_POLICY:
                table[result.target] = {k: v for k, v in result.bounds().items() if k != LoggedMean.name}
        return table

    def to_dict(self) -> dict[str, Any]:
        return {"split": None if self.split is None else asdict(self.split),
                "results": [result.to_dict() for result in self.results]}

    def format_table(self) -> str:
        """One table: the logging policy's row once, then each target's estimator rows, then the notes."""
        first = self.results[0]
        rows = [(LOGGING_POLICY, first.estimate(LoggedMean.name))]
        for result in self.results:
            rows += [(result.target if i == 0 else "", r)
                     for i, r in enumerate(r for r in result.rows if r.estimator != LoggedMean.name)]
        lines = [first.logs_line(), *([self.split.describe()] if self.split else []), "",
                 *_table_lines(first.alpha, rows), "", *first.notes(support=False)]
        lines += [r.support_line(f"target {r.target}") for r in self.results if r.support_violations is not None]
        return "\n".join(lines)


def _table_lines(alpha: float, rows: Sequence[tuple[str, EstimateRow]]) -> list[str]:
    """Header and a line per row; a first column of target names when any row has one."""
    level = f"{1 - alpha:.0%}"
    width = max(10, *(len(r.estimator) for _, r in rows))
    target_width = max(len(name) for name, _ in rows)
    first = f"{'target':<{target_width}} " if target_width else ""
    lines = [f"{first}{'estimator':<{width}} {'estimate':>10} {level + ' interval':>22} {'ESS':>10} {'max weight':>11}"]
    for name, r in rows:
        ess = "-" if math.isnan(r.effective_sample_size) else f"{r.effective_sample_size:,.0f}"
        weight = "-" if math.isnan(r.max_weight) else f"{r.max_weight:,.2f}"
        interval = f"[{r.low:.5f}, {r.high:.5f}]"
        target = f"{name:<{target_width}} " if target_width else ""
        lines.append(f"{target}{r.estimator:<{width}} {r.estimate:>10.5f} {interval:>22} {ess:>10} {weight:>11}")
    return lines


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
             n_folds: int = 5, alpha: float = 0.05, n_bootstrap: int = 1000, n_refits: int = DEFAULT_REFITS,
             random_state: int | None = None) -> EvaluationResult:
    """Run ``estimators`` for ``target_probs`` on ``log``: ``Estimator`` objects or specs (``"ips(clip=10)"``,
    see ``ope.spec``), or one comma-separated string of specs. Each row is labelled by its estimator's spec.

    One target of :func:`evaluate_targets`, which says how DM and DR get their reward model and interval.
    """
    return evaluate_targets(log, {target: target_probs}, logs=logs, estimators=estimators,
                            reward_model=reward_model, n_folds=n_folds, alpha=alpha, n_bootstrap=n_bootstrap,
                            n_refits=n_refits, random_state=random_state)[0]


def evaluate_targets(log: LoggedFeedback, targets: Mapping[str, np.ndarray], *, logs: str = "logs",
                     estimators: str | Sequence[Estimator | str] = DEFAULT_ESTIMATORS, reward_model: Any = None,
                     n_folds: int = 5, alpha: float = 0.05, n_bootstrap: int = 1000, n_refits: int = DEFAULT_REFITS,
                     random_state: int | None = None) -> tuple[EvaluationResult, ...]:
    """Every estimator for every target (name → probabilities (n_rounds, n_actions)) on ``log``.

    Each result starts with the logging policy's ``logged`` row (an explicit ``logged`` estimator is
    not repeated). DM and DR use a reward model cross-fitted on the context (``context_features``) and
    the action, shared by all targets; ``reward_model`` replaces the default (any scikit-learn classifier
    or regressor). Holding that model fixed would leave its own error out of their intervals, so they
    get a normal interval, estimate ± z·sd, whose sd is the spread of the estimate over ``n_refits``
    bootstrap resamples of the rounds that each cross-fit the model again (a percentile interval would
    need many more of these costly refits). The other estimators get a percentile bootstrap interval of
    ``n_bootstrap`` resamples. Each result counts the rows where its target leaves the logged support
    (``support_violations``) without failing.
    """
    chosen = [est for est in as_estimators(estimators) if not isinstance(est, LoggedMean)]
    probs = {name: np.asarray(p, dtype=np.float64) for name, p in targets.items()}
    for p in probs.values():
        if p.shape != (log.n_rounds, log.n_actions):
            raise ValueError(f"target probabilities must have shape (n_rounds, n_actions) = "
                             f"{(log.n_rounds, log.n_actions)}; got {p.shape}")
    modelled = [est for est in chosen if est.needs_q_hat]
    q_hat = refit_sd = None
    if modelled:
        if int(n_refits) < 2:
            raise ValueError(f"`n_refits` must be >= 2 to give DM and DR an interval; got {n_refits!r}")
        features = context_features(log.context)
        fit = {"model": reward_model, "n_folds": n_folds}
        q_hat = cross_fit_q_hat(features, log.action, log.reward, log.n_actions, **fit, random_state=random_state)
        refit_sd = _refit_sd(log, features, probs, modelled, fit, int(n_refits), random_state)
    z = NormalDist().inv_cdf(1 - alpha / 2)
    results = []
    for name, target_probs in probs.items():
        rounds = (log.reward, log.action, log.propensity, target_probs, q_hat)
        rows = []
        for est in (LoggedMean(), *chosen):
            value = est.estimate_policy_value(*rounds)
            if refit_sd is not None and est.needs_q_hat:
                low, high = value - z * refit_sd[name, est.spec], value + z * refit_sd[name, est.spec]
            else:
                low, high = est.estimate_interval(*rounds, alpha=alpha, n_bootstrap=n_bootstrap,
                                                  random_state=random_state)
            rows.append(EstimateRow(est.spec, value, low, high, *est.diagnostics(*rounds)))
        results.append(EvaluationResult(name, logs, log.n_rounds, log.n_actions, alpha, n_bootstrap, tuple(rows),
                                        support_violations(log, target_probs), int(n_refits) if modelled else None))
    return tuple(results)


def evaluate_specs(log: LoggedFeedback, targets: Sequence[TargetSpec], *, logs: str = "logs",
                   estimators: str | Sequence[Estimator | str] = DEFAULT_ESTIMATORS,
                   test_size: float = DEFAULT_TEST_SIZE, alpha: float = 0.05, n_bootstrap: int = 1000,
                   n_refits: int = DEFAULT_REFITS, seed: int = 0) -> EvaluationTable:
    """Evaluate targets written as specs (``ope.targets``) on ``log``, in one table.

    With a ``trained`` target, the rounds are split at random (held-out share ``test_size``, seeded by
    ``seed``): trained targets learn on the training rounds and every target is evaluated on the held-out
    ones, so they are compared on the same rounds. ``logged`` needs no probabilities: the logging
    policy's row heads every table.
    """
    features = context_features(log.context)
    split = None
    if needs_split(targets):
        train, test = split_rounds(log.n_rounds, test_size, seed)
        split = Split(train.size, test.size, seed)
        train_log, train_features = log.take(train), features[train]
        log, features = log.take(test), features[test]
    probs: dict[str, np.ndarray] = {}
    for target in targets:
        if target.kind == TRAINED:
            models = fit_trained_policy(train_features, train_log, model=target.arg, seed=seed)
            probs[target.label] = trained_target_probs(models, features, log.allowed)
        elif target.kind != LOGGED:
            probs[target.label] = fixed_target_probs(target, log)
    if not probs:  # only the logging policy: its row alone
        probs[LOGGING_POLICY] = np.full((log.n_rounds, log.n_actions), 1 / log.n_actions)
        estimators = []
    results = evaluate_targets(log, probs, logs=logs, estimators=estimators, alpha=alpha, n_bootstrap=n_bootstrap,
                               n_refits=n_refits, random_state=seed)
    return EvaluationTable(results, split)


def _refit_sd(log: LoggedFeedback, features: np.ndarray, probs: Mapping[str, np.ndarray],
              estimators: Sequence[Estimator], fit: Mapping[str, Any], n_refits: int,
              random_state: int | None) -> dict[tuple[str, str], float]:
    """(target, estimator spec) → sd of the estimate over ``n_refits`` resamples that refit the reward model."""
    rng = np.random.default_rng(random_state)
    stats: dict[tuple[str, str], list[float]] = {(name, est.spec): [] for name in probs for est in estimators}
    for _ in range(n_refits):
        idx = rng.integers(0, log.n_rounds, log.n_rounds)
        reward, action = log.reward[idx], log.action[idx]
        q_hat = cross_fit_q_hat(features[idx], action, reward, log.n_actions, **fit,
                                random_state=int(rng.integers(2**31)))
        for name, target_probs in probs.items():
            rounds = (reward, action, log.propensity[idx], target_probs[idx], q_hat)
            for est in estimators:
                stats[name, est.spec].append(est.estimate_policy_value(*rounds))
    return {key: float(np.std(values, ddof=1)) for key, values in stats.items()}


def evaluate_logs(logs: str | Path, *, policy: str | Policy | None = None, target_probs: str | Path | None = None,
                  estimators: str | Sequence[Estimator | str] = DEFAULT_ESTIMATORS, n_draws: int = 1000,
                  n_bootstrap: int = 1000, n_refits: int = DEFAULT_REFITS, seed: int = 0,
                  label: str | None = None) -> EvaluationResult:
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
                    n_bootstrap=n_bootstrap, n_refits=n_refits, random_state=seed)


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
