"""Target policies written as text, so a log can be evaluated without building probability arrays by hand.

A target spec is one of:

- ``always:<action>``: always that action, named as in the log's ``action_names`` (an action id for a
  log without names), e.g. ``always:Mens E-Mail`` on Hillstrom;
- ``uniform``: every action with equal probability (every allowed one, when the log records them);
- ``logged``: the logging policy itself, whose value is the logged mean reward (the table's
  ``logged`` row, printed once whatever the targets);
- ``trained`` or ``trained:<model>``: a contextual policy fitted on a training split of the log's own
  context (``TRAINED_MODELS``; ``logistic`` by default): one reward model per action, the action with
  the highest predicted reward taken with probability 1 − ``TRAINED_EPSILON`` and the rest spread
  evenly, so every action keeps some probability. It is evaluated on the held-out rounds only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from .estimators import default_reward_model, expected_reward
from .logged import LoggedFeedback

LOGGED, UNIFORM, ALWAYS, TRAINED = "logged", "uniform", "always", "trained"
TRAINED_MODELS = ("logistic", "gbm")
TRAINED_EPSILON = 0.05
DEFAULT_TEST_SIZE = 0.3


@dataclass(frozen=True)
class TargetSpec:
    """A parsed target spec: its ``kind`` (always, uniform, logged, trained) and its argument, if any."""

    kind: str
    arg: str | None = None

    @property
    def label(self) -> str:
        """The spec as written back, e.g. ``always:Mens E-Mail``: the target's name in tables and runs."""
        return self.kind if self.arg is None else f"{self.kind}:{self.arg}"


@dataclass(frozen=True)
class Split:
    """The train / held-out split of the rounds a trained target needs, and its seed."""

    n_train: int
    n_test: int
    seed: int

    def describe(self) -> str:
        return (f"split: {self.n_train:,} rounds train the trained targets, every target is evaluated on the "
                f"{self.n_test:,} held-out rounds (random split, seed {self.seed})")


def parse_target(spec: str) -> TargetSpec:
    """The target one spec names; ValueError saying which specs exist for a malformed one.

    Examples
    --------
    >>> parse_target("always:Mens E-Mail").label
    'always:Mens E-Mail'
    >>> parse_target("trained").arg is None
    True
    """
    kind, sep, arg = spec.strip().partition(":")
    kind, arg = kind.strip(), arg.strip()
    if kind in (UNIFORM, LOGGED) and not sep:
        return TargetSpec(kind)
    if kind == ALWAYS and arg:
        return TargetSpec(kind, arg)
    if kind == TRAINED and (not sep or arg in TRAINED_MODELS):
        return TargetSpec(kind, arg or None)
    if kind == TRAINED:
        raise ValueError(f"target {spec!r}: unknown model {arg!r}; known: {', '.join(TRAINED_MODELS)}")
    raise ValueError(f"unknown target {spec!r}; give always:<action name>, uniform, logged, trained or "
                     f"trained:<model> ({', '.join(TRAINED_MODELS)})")


def parse_targets(specs: Sequence[str]) -> list[TargetSpec]:
    """The targets of several specs; ValueError when one is given twice (its rows would repeat)."""
    targets = [parse_target(spec) for spec in specs]
    labels = [t.label for t in targets]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"target {repeated[0]!r} is given twice; give each target once")
    return targets


def needs_split(targets: Sequence[TargetSpec]) -> bool:
    """Whether some target is trained on the log, so that every target is evaluated on held-out rounds."""
    return any(t.kind == TRAINED for t in targets)


def split_rounds(n_rounds: int, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, held-out) round indices, each sorted; ``test_size`` is the held-out share."""
    if not 0 < test_size < 1:
        raise ValueError(f"the held-out share must lie in (0, 1); got {test_size!r}")
    n_test = int(round(n_rounds * test_size))
    if not 0 < n_test < n_rounds:
        raise ValueError(f"{n_rounds} rounds cannot be split with a held-out share of {test_size}")
    order = np.random.default_rng(seed).permutation(n_rounds)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def fixed_target_probs(target: TargetSpec, log: LoggedFeedback) -> np.ndarray:
    """π(a | x_i) of an ``always`` or ``uniform`` target on every round of ``log``, (n_rounds, n_actions)."""
    if target.kind == UNIFORM:
        return _spread(np.ones((log.n_rounds, log.n_actions)), log.allowed)
    if target.kind == ALWAYS:
        probs = np.zeros((log.n_rounds, log.n_actions))
        probs[:, action_id(log, target.arg or "")] = 1.0
        return probs
    raise ValueError(f"target {target.label!r} has no fixed probabilities")


def action_id(log: LoggedFeedback, name: str) -> int:
    """The action called ``name`` in ``log``: by ``action_names``, else by id; ValueError listing them."""
    if log.action_names is not None:
        if name in log.action_names:
            return log.action_names.index(name)
        raise ValueError(f"unknown action {name!r}; the actions of these logs are: {', '.join(log.action_names)}")
    if name.isdigit() and int(name) < log.n_actions:
        return int(name)
    raise ValueError(f"unknown action {name!r}; these logs have unnamed actions, give an id in "
                     f"[0, {log.n_actions})")


def fit_trained_policy(features: np.ndarray, log: LoggedFeedback, *, model: str | None = None,
                       seed: int = 0) -> list[Any]:
    """One fitted reward model per action (None for an action whose reward never varies in ``log``).

    ``features`` are the rows of ``log``; the model is ``model`` of ``TRAINED_MODELS`` (default logistic:
    the default reward model of the estimators).
    """
    fitted: list[Any] = []
    template = _model(model or TRAINED_MODELS[0], log.reward, seed)
    for action in range(log.n_actions):
        rows = log.action == action
        if np.unique(log.reward[rows]).size < 2:
            fitted.append(float(log.reward[rows].mean()) if rows.any() else float(log.reward.mean()))
            continue
        fitted.append(clone(template).fit(features[rows], log.reward[rows]))
    return fitted


def trained_target_probs(models: Sequence[Any], features: np.ndarray,
                         allowed: np.ndarray | None = None) -> np.ndarray:
    """π(a | x) of a trained policy: the predicted best (allowed) action w.p. 1 − ε, ε spread evenly."""
    predicted = np.column_stack([np.full(features.shape[0], m) if isinstance(m, float) else expected_reward(m, features)
                                 for m in models])
    if allowed is not None:
        predicted = np.where(allowed, predicted, -np.inf)
    best = np.zeros_like(predicted)
    best[np.arange(predicted.shape[0]), predicted.argmax(axis=1)] = 1.0
    explore = _spread(np.ones_like(predicted), allowed)
    return (1 - TRAINED_EPSILON) * best + TRAINED_EPSILON * explore


def _spread(weights: np.ndarray, allowed: np.ndarray | None) -> np.ndarray:
    """Rows of ``weights`` restricted to the allowed actions and normalised to sum to 1."""
    if allowed is not None:
        weights = np.where(allowed, weights, 0.0)
    return weights / weights.sum(axis=1, keepdims=True)


def _model(name: str, reward: np.ndarray, seed: int) -> Any:
    if name == "logistic":
        return default_reward_model(reward)
    binary = bool(np.isin(reward, (0.0, 1.0)).all())
    return (HistGradientBoostingClassifier if binary else HistGradientBoostingRegressor)(random_state=seed)

