"""Off-policy estimators: what would a target policy have earned on logged decisions?

Notation: round i logged action a_i with propensity μ_i under the logging policy and reward r_i; the
target policy puts probability π(a | x_i) on action a; the importance weight is w_i = π(a_i | x_i) / μ_i;
q̂(x_i, a) is a reward model's prediction for every action. Array conventions: ``reward``,
``propensity`` float (n_rounds,), ``action`` int (n_rounds,), ``target_probs`` and ``q_hat`` float
(n_rounds, n_actions).

Every estimator here is a ratio of sums of per-round terms, V̂ = Σ_i num_i / Σ_i den_i, or a sum of
such ratios (SNDR), so one bootstrap (resampling rounds) gives every interval. The array functions
(:func:`ips`, :func:`snips`, :func:`dm`, :func:`dr`, :func:`replay`) need nothing but numpy arrays; the
estimator classes add intervals and weight diagnostics with one contract, so a caller can run a list of
them. An estimator is named by its spec (``ips(clip=10)``, see :mod:`.spec`): its name with its
non-default parameters. The definitions follow Open Bandit Pipeline's, and
``tests/data/obp_reference.json`` holds OBP's own numbers to check them against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sendwise.engine import as_generator

from ..validation import (
    as_action_ids,
    as_round_floats,
    check_round_count,
    check_rows,
    signature_defaults,
    signature_params,
)

_SUM_TOLERANCE = 1e-6
_BOOTSTRAP_BLOCK = 2**21
_PREDICT_BLOCK = 2**23


class _Rounds(NamedTuple):
    reward: np.ndarray
    action: np.ndarray
    propensity: np.ndarray
    target_probs: np.ndarray
    q_hat: np.ndarray | None


class WeightDiagnostics(NamedTuple):
    """How much the logged data support an estimate: effective sample size (Σw)²/Σw² and max weight.

    Both are NaN for estimators that do not reweight rounds (DM).
    """

    effective_sample_size: float
    max_weight: float


@dataclass(frozen=True)
class Estimator:
    """Contract of every estimator: V̂ = Σ_i num_i / Σ_i den_i over per-round terms.

    Subclasses define ``_terms`` (and ``_weights`` when they reweight rounds); ``_terms`` may return
    arrays of shape (n_parts, n_rounds) for a sum of ratios, V̂ = Σ_k Σ_i num_ki / Σ_i den_ki. Every
    estimator takes the same arguments, so callers can run a list of them; those it does not use
    (``q_hat`` for IPS, ``propensity`` for DM, …) are still checked, except ``q_hat``, which only DM and
    the doubly robust family require.
    """

    name: ClassVar[str] = ""
    needs_q_hat: ClassVar[bool] = False

    def get_params(self) -> dict[str, Any]:
        """The constructor's parameters and their values, as in scikit-learn, e.g. ``{"clip": 10}``."""
        return {param: getattr(self, param) for param in signature_params(type(self))}

    @property
    def spec(self) -> str:
        """The name with the parameters that differ from their defaults, e.g. ``ips(clip=10)``.

        It labels the estimator's results, so two variants in one table differ, and
        ``parse_estimator`` reads it back into an equal estimator.
        """
        defaults = signature_defaults(type(self))
        changed = [f"{param}={_format_param(value)}" for param, value in self.get_params().items()
                   if value != defaults[param]]
        return f"{self.name}({','.join(changed)})" if changed else self.name

    def estimate_policy_value(self, reward: np.ndarray, action: np.ndarray, propensity: np.ndarray,
                              target_probs: np.ndarray, q_hat: np.ndarray | None = None) -> float:
        """Point estimate of the target policy's value (mean reward per round)."""
        return _ratio(self.name, *self._parts(self._rounds(reward, action, propensity, target_probs, q_hat)))

    def estimate_interval(self, reward: np.ndarray, action: np.ndarray, propensity: np.ndarray,
                          target_probs: np.ndarray, q_hat: np.ndarray | None = None, *, alpha: float = 0.05,
                          n_bootstrap: int = 1000, random_state: int | np.random.Generator | None = None,
                          ) -> tuple[float, float]:
        """Percentile-bootstrap (1 − alpha) interval: rounds resampled with replacement, seeded.

        ``q_hat`` is held fixed, so for DM and the DR family this interval leaves out the reward model's
        own variance; ``evaluation.evaluate`` gives those estimators an interval that refits the model.
        """
        if not 0 < alpha < 1:
            raise ValueError(f"`alpha` must lie in (0, 1); got {alpha!r}")
        if int(n_bootstrap) < 1:
            raise ValueError(f"`n_bootstrap` must be >= 1; got {n_bootstrap!r}")
        num, den = self._parts(self._rounds(reward, action, propensity, target_probs, q_hat))
        _ratio(self.name, num, den)  # an undefined point estimate has no interval either
        rng = as_generator(random_state, name="random_state")
        n_parts, n_rounds = num.shape
        chunk = max(1, _BOOTSTRAP_BLOCK // (n_parts * n_rounds))  # resamples drawn per block, to bound memory
        stats = []
        for start in range(0, int(n_bootstrap), chunk):
            idx = rng.integers(0, n_rounds, (min(chunk, int(n_bootstrap) - start), n_rounds))
            totals = den[:, idx].sum(axis=2)
            with np.errstate(invalid="ignore", divide="ignore"):
                ratios = (num[:, idx].sum(axis=2) / totals).sum(axis=0)
                stats.append(np.where((totals > 0).all(axis=0), ratios, np.nan))
        low, high = np.nanquantile(np.concatenate(stats), [alpha / 2, 1 - alpha / 2])
        return float(low), float(high)

    def diagnostics(self, reward: np.ndarray, action: np.ndarray, propensity: np.ndarray,
                    target_probs: np.ndarray, q_hat: np.ndarray | None = None) -> WeightDiagnostics:
        """Effective sample size and largest weight of the importance weights this estimator applies."""
        weights = self._weights(self._rounds(reward, action, propensity, target_probs, q_hat))
        if weights is None:
            return WeightDiagnostics(float("nan"), float("nan"))
        total_sq = float(np.sum(weights**2))
        ess = float(np.sum(weights)) ** 2 / total_sq if total_sq > 0 else 0.0
        return WeightDiagnostics(ess, float(weights.max()))

    def _rounds(self, reward: Any, action: Any, propensity: Any, target_probs: Any, q_hat: Any) -> _Rounds:
        return _check_rounds(reward, action, propensity, target_probs, q_hat, self.needs_q_hat)

    def _parts(self, rounds: _Rounds) -> tuple[np.ndarray, np.ndarray]:
        """``_terms`` as arrays of shape (n_parts, n_rounds)."""
        num, den = self._terms(rounds)
        return np.atleast_2d(num), np.atleast_2d(den)

    def _terms(self, rounds: _Rounds) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _weights(self, rounds: _Rounds) -> np.ndarray | None:
        return None


@dataclass(frozen=True)
class IPS(Estimator):
    """Inverse propensity scoring: V̂ = (1/n) Σ_i min(w_i, clip) r_i.

    Unbiased when every action the target may take has a positive logged propensity (and no clip);
    its variance grows with the weights. ``clip`` caps them, trading bias for variance.
    """

    clip: float | None = None
    name: ClassVar[str] = "ips"

    def __post_init__(self) -> None:
        _check_clip(self.clip)

    def _weights(self, rounds: _Rounds) -> np.ndarray:
        return _clipped(_importance_weights(rounds), self.clip)

    def _terms(self, rounds: _Rounds) -> tuple[np.ndarray, np.ndarray]:
        return self._weights(rounds) * rounds.reward, np.ones_like(rounds.reward)


@dataclass(frozen=True)
class SNIPS(Estimator):
    """Self-normalised IPS: V̂ = Σ_i w_i r_i / Σ_i w_i.

    Slightly biased but consistent, and never outside the range of the rewards: the usual choice when
    weights are large.
    """

    name: ClassVar[str] = "snips"

    def _weights(self, rounds: _Rounds) -> np.ndarray:
        return _importance_weights(rounds)

    def _terms(self, rounds: _Rounds) -> tuple[np.ndarray, np.ndarray]:
        weights = self._weights(rounds)
        return weights * rounds.reward, weights


@dataclass(frozen=True)
class DM(Estimator):
    """Direct method: V̂ = (1/n) Σ_i Σ_a π(a | x_i) q̂(x_i, a).

    Low variance, but as biased as the reward model; uses no propensities.
    """

    name: ClassVar[str] = "dm"
    needs_q_hat: ClassVar[bool] = True

    def _terms(self, rounds: _Rounds) -> tuple[np.ndarray, np.ndarray]:
        return _model_term(rounds.target_probs, rounds.q_hat), np.ones_like(rounds.reward)


@dataclass(frozen=True)
class _ModelCorrected(Estimator):
    """The doubly robust family: V̂ = (1/n) Σ_i [Σ_a π(a | x_i) q̂(x_i, a) + ŵ_i (r_i − q̂(x_i, a_i))].

    Each member chooses the weight ŵ_i it gives the reward model's residual on the logged action
    (``_weights``): the importance weight, clipped, switched off or shrunk.
    """

    needs_q_hat: ClassVar[bool] = True

    def _weights(self, rounds: _Rounds) -> np.ndarray:
        raise NotImplementedError

    def _terms(self, rounds: _Rounds) -> tuple[np.ndarray, np.ndarray]:
        model_term = _model_term(rounds.target_probs, rounds.q_hat)
        return model_term + self._weights(rounds) * _residual(rounds), np.ones_like(rounds.reward)


@dataclass(frozen=True)
class DR(_ModelCorrected):
    """Doubly robust: V̂ = (1/n) Σ_i [Σ_a π(a | x_i) q̂(x_i, a) + min(w_i, clip) (r_i − q̂(x_i, a_i))].

    Unbiased if either the propensities or the reward model are right; a good q̂ cuts the variance of IPS.
    """

    clip: float | None = None
    name: ClassVar[str] = "dr"

    def __post_init__(self) -> None:
        _check_clip(self.clip)

    def _weights(self, rounds: _Rounds) -> np.ndarray:
        return _clipped(_importance_weights(rounds), self.clip)


@dataclass(frozen=True)
class SwitchDR(_ModelCorrected):
    """Switch-DR (Wang et al. 2017): DR whose correction is dropped where the weight exceeds ``tau``.

    V̂ = (1/n) Σ_i [Σ_a π(a | x_i) q̂(x_i, a) + 1[w_i ≤ tau] w_i (r_i − q̂(x_i, a_i))]: rounds with a
    weight above ``tau`` trust the reward model alone. ``tau`` = inf is DR, ``tau`` = 0 is DM. Open
    Bandit Pipeline's ``SwitchDoublyRobust`` (its ``lambda_`` is ``tau``).
    """

    tau: float = math.inf
    name: ClassVar[str] = "switch-dr"

    def __post_init__(self) -> None:
        _check_non_negative("tau", self.tau)

    def _weights(self, rounds: _Rounds) -> np.ndarray:
        weights = _importance_weights(rounds)
        return np.where(weights <= self.tau, weights, 0.0)


@dataclass(frozen=True)
class DRos(_ModelCorrected):
    """DR with optimistic shrinkage (Su et al. 2020): the weight w_i becomes λ w_i / (w_i² + λ).

    Large weights shrink the most; ``lambda_`` = 0 is DM (the default, as in Open Bandit Pipeline's
    ``DoublyRobustWithShrinkage``), ``lambda_`` → inf is DR. A round with w_i = 0 gets ŵ_i = 0 for every
    ``lambda_``, including 0, where the formula reads 0/0.
    """

    lambda_: float = 0.0
    name: ClassVar[str] = "dr-os"

    def __post_init__(self) -> None:
        _check_non_negative("lambda_", self.lambda_)

    def _weights(self, rounds: _Rounds) -> np.ndarray:
        weights = _importance_weights(rounds)
        if math.isinf(self.lambda_):
            return weights
        denominator = weights**2 + self.lambda_
        safe = np.where(denominator > 0, denominator, 1.0)
        return np.where(denominator > 0, self.lambda_ * weights / safe, 0.0)


@dataclass(frozen=True)
class SNDR(_ModelCorrected):
    """Self-normalised DR: V̂ = (1/n) Σ_i Σ_a π(a | x_i) q̂(x_i, a) + Σ_i w_i (r_i − q̂(x_i, a_i)) / Σ_i w_i.

    DR with its correction divided by the mean weight, as SNIPS divides IPS: stable when weights are
    large, and equal to DR when they average 1. Open Bandit Pipeline's ``SelfNormalizedDoublyRobust``.
    """

    name: ClassVar[str] = "sndr"

    def _weights(self, rounds: _Rounds) -> np.ndarray:
        return _importance_weights(rounds)

    def _terms(self, rounds: _Rounds) -> tuple[np.ndarray, np.ndarray]:
        weights = self._weights(rounds)
        num = np.stack([_model_term(rounds.target_probs, rounds.q_hat), weights * _residual(rounds)])
        return num, np.stack([np.ones_like(weights), weights])


@dataclass(frozen=True)
class Replay(Estimator):
    """Replay (Li et al. 2011): V̂ = Σ_i 1[a_i = π(x_i)] r_i / Σ_i 1[a_i = π(x_i)].

    For a deterministic target (``target_probs`` one-hot per row): the mean reward of the rounds where
    the logged action is the one the target takes. Unbiased under uniform logging.
    """

    name: ClassVar[str] = "replay"

    def _weights(self, rounds: _Rounds) -> np.ndarray:
        return (rounds.action == _deterministic_action(rounds.target_probs)).astype(np.float64)

    def _terms(self, rounds: _Rounds) -> tuple[np.ndarray, np.ndarray]:
        matched = self._weights(rounds)
        return matched * rounds.reward, matched


@dataclass(frozen=True)
class LoggedMean(Estimator):
    """The logging policy's own value: V̂ = (1/n) Σ_i r_i (ignores the target)."""

    name: ClassVar[str] = "logged"

    def _weights(self, rounds: _Rounds) -> np.ndarray:
        return np.ones_like(rounds.reward)

    def _terms(self, rounds: _Rounds) -> tuple[np.ndarray, np.ndarray]:
        return rounds.reward, np.ones_like(rounds.reward)


ESTIMATORS: dict[str, type[Estimator]] = {
    cls.name: cls for cls in (IPS, SNIPS, DM, DR, SwitchDR, DRos, SNDR, Replay, LoggedMean)
}


def ips(reward: np.ndarray, action: np.ndarray, propensity: np.ndarray, target_probs: np.ndarray, *,
        clip: float | None = None) -> float:
    """IPS estimate, (1/n) Σ_i min(w_i, clip) r_i with w_i = π(a_i | x_i) / μ_i; see :class:`IPS`.

    Examples
    --------
    >>> ips([1.0, 0.0], [0, 1], [0.5, 0.5], [[1.0, 0.0], [1.0, 0.0]])
    1.0
    """
    return IPS(clip=clip).estimate_policy_value(reward, action, propensity, target_probs)


def snips(reward: np.ndarray, action: np.ndarray, propensity: np.ndarray, target_probs: np.ndarray) -> float:
    """Self-normalised IPS estimate, Σ_i w_i r_i / Σ_i w_i; see :class:`SNIPS`.

    Examples
    --------
    >>> snips([1.0, 0.0, 1.0], [0, 1, 0], [0.5, 0.5, 0.25], [[1.0, 0.0], [1.0, 0.0], [0.5, 0.5]])
    1.0
    """
    return SNIPS().estimate_policy_value(reward, action, propensity, target_probs)


def dm(target_probs: np.ndarray, q_hat: np.ndarray) -> float:
    """Direct-method estimate, (1/n) Σ_i Σ_a π(a | x_i) q̂(x_i, a); see :class:`DM`.

    Examples
    --------
    >>> dm([[0.5, 0.5]], [[0.25, 0.75]])
    0.5
    """
    target_probs = _check_target_probs(target_probs)
    return float(_model_term(target_probs, _check_q_hat(q_hat, target_probs.shape)).mean())


def dr(reward: np.ndarray, action: np.ndarray, propensity: np.ndarray, target_probs: np.ndarray,
       q_hat: np.ndarray, *, clip: float | None = None) -> float:
    """Doubly robust estimate; see :class:`DR` for the formula.

    Examples
    --------
    >>> dr([1.0], [0], [0.5], [[1.0, 0.0]], [[0.6, 0.1]])
    1.4
    """
    return DR(clip=clip).estimate_policy_value(reward, action, propensity, target_probs, q_hat)


def replay(reward: np.ndarray, action: np.ndarray, target_action: np.ndarray) -> float:
    """Replay estimate for a deterministic target: mean reward over rounds with a_i = target_action_i.

    Examples
    --------
    >>> replay([1.0, 0.0, 0.0], [2, 1, 2], [2, 0, 2])
    0.5
    """
    reward = as_round_floats("reward", reward, 1)
    action = as_action_ids("action", action, reward.shape[0])
    target_action = as_action_ids("target_action", target_action, reward.shape[0])
    matched = (action == target_action).astype(np.float64)
    return _ratio(Replay.name, matched * reward, matched)


def cross_fit_q_hat(features: np.ndarray, action: np.ndarray, reward: np.ndarray, n_actions: int, *,
                    model: Any = None, n_folds: int = 5, random_state: int | None = None) -> np.ndarray:
    """Cross-fitted reward model q̂(x_i, a) for every round and every action, float64 (n_rounds, n_actions).

    The rounds are split into ``n_folds`` folds; a clone of ``model`` is fitted on the other folds and
    predicts the held-out fold for every action, so no round's prediction has seen its own reward (what
    keeps DR's correction term honest). The model sees ``[features, one_hot(action)]``. ``model`` is
    any scikit-learn classifier (q̂ = Σ_c c·P(c)) or regressor. The default, standardised logistic
    regression for 0/1 rewards and ridge regression otherwise, is fast and stable but additive (a context
    effect plus an action effect); pass e.g. ``HistGradientBoostingClassifier()`` to learn interactions.
    """
    reward = as_round_floats("reward", reward, 1)
    features = as_round_floats("features", features, 2)
    action = as_action_ids("action", action, reward.shape[0], n_actions)
    if features.shape[0] != reward.shape[0]:
        raise ValueError(f"`features` must have {reward.shape[0]} rows like `reward`; got {features.shape[0]}")
    if not 2 <= int(n_folds) <= reward.shape[0]:
        raise ValueError(f"`n_folds` must lie in [2, n_rounds={reward.shape[0]}]; got {n_folds!r}")
    if model is None:
        model = default_reward_model(reward)
    one_hot = np.eye(n_actions)
    q_hat = np.empty((reward.shape[0], n_actions))
    for train, test in KFold(int(n_folds), shuffle=True, random_state=random_state).split(features):
        if is_classifier(model) and np.unique(reward[train]).size < 2:
            q_hat[test] = reward[train][0]  # one class only: nothing for a classifier to learn
            continue
        fitted = clone(model).fit(np.hstack([features[train], one_hot[action[train]]]), reward[train])
        block = max(1, _PREDICT_BLOCK // (test.size * (features.shape[1] + n_actions)))  # actions per call
        for start in range(0, n_actions, block):
            actions = np.arange(start, min(n_actions, start + block))
            design = np.hstack([np.tile(features[test], (actions.size, 1)), np.repeat(one_hot[actions], test.size, 0)])
            predicted = expected_reward(fitted, design)
            q_hat[test, start:start + actions.size] = predicted.reshape(actions.size, test.size).T
    return q_hat


def default_reward_model(reward: np.ndarray) -> Any:
    """Standardised logistic regression for 0/1 rewards, ridge regression otherwise: fast and stable."""
    binary = bool(np.isin(reward, (0.0, 1.0)).all())
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000) if binary else Ridge())


def expected_reward(model: Any, design: np.ndarray) -> np.ndarray:
    """A fitted regressor's prediction, or a fitted classifier's Σ_c c·P(c | x)."""
    if is_classifier(model):
        return model.predict_proba(design) @ model.classes_.astype(np.float64)
    return model.predict(design)


def _check_rounds(reward: Any, action: Any, propensity: Any, target_probs: Any, q_hat: Any,
                  needs_q_hat: bool) -> _Rounds:
    reward = as_round_floats("reward", reward, 1)
    n_rounds = reward.shape[0]
    if n_rounds == 0:
        raise ValueError("`reward` must have at least one round; got 0")
    target_probs = _check_target_probs(target_probs)
    if target_probs.shape[0] != n_rounds:
        raise ValueError(f"`target_probs` must have {n_rounds} rows like `reward`; got {target_probs.shape[0]}")
    action = as_action_ids("action", action, n_rounds, target_probs.shape[1])
    propensity = as_round_floats("propensity", propensity, 1)
    check_round_count("propensity", propensity, n_rounds)
    check_rows("`propensity`", propensity, (propensity > 0) & (propensity <= 1), "must lie in (0, 1]")
    if needs_q_hat:
        q_hat = _check_q_hat(q_hat, target_probs.shape)
    return _Rounds(reward, action, propensity, target_probs, q_hat)


def _check_target_probs(target_probs: Any) -> np.ndarray:
    target_probs = as_round_floats("target_probs", target_probs, 2)
    check_rows("`target_probs`", target_probs, (target_probs >= 0) & (target_probs <= 1), "must lie in [0, 1]")
    sums = target_probs.sum(axis=1)
    check_rows("`target_probs`", sums, np.abs(sums - 1) <= _SUM_TOLERANCE, "must sum to 1 over the actions")
    return target_probs


def _check_q_hat(q_hat: Any, shape: tuple[int, ...]) -> np.ndarray:
    if q_hat is None:
        raise ValueError("`q_hat` is required: this estimator needs a reward model's predictions")
    q_hat = as_round_floats("q_hat", q_hat, 2)
    if q_hat.shape != shape:
        raise ValueError(f"`q_hat` must have shape {shape} like `target_probs`; got {q_hat.shape}")
    return q_hat


def _check_clip(clip: float | None) -> None:
    if clip is not None and not (isinstance(clip, int | float) and clip > 0):
        raise ValueError(f"`clip` must be None or a number > 0; got {clip!r}")


def _check_non_negative(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
        raise ValueError(f"`{name}` must be a number >= 0 (inf allowed); got {value!r}")


def _format_param(value: Any) -> str:
    """A parameter value as a spec writes it: ``10`` for 10.0, ``inf``, ``None``, ``true``."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _importance_weights(rounds: _Rounds) -> np.ndarray:
    """w_i = π(a_i | x_i) / μ_i."""
    rows = np.arange(rounds.action.shape[0])
    return rounds.target_probs[rows, rounds.action] / rounds.propensity


def _clipped(weights: np.ndarray, clip: float | None) -> np.ndarray:
    return weights if clip is None else np.minimum(weights, clip)


def _model_term(target_probs: np.ndarray, q_hat: np.ndarray | None) -> np.ndarray:
    """Σ_a π(a | x_i) q̂(x_i, a) per round."""
    assert q_hat is not None  # estimators with needs_q_hat checked it
    return np.einsum("ij,ij->i", target_probs, q_hat)


def _residual(rounds: _Rounds) -> np.ndarray:
    """r_i − q̂(x_i, a_i) per round."""
    assert rounds.q_hat is not None  # estimators with needs_q_hat checked it
    return rounds.reward - rounds.q_hat[np.arange(rounds.action.shape[0]), rounds.action]


def _deterministic_action(target_probs: np.ndarray) -> np.ndarray:
    """The action a deterministic target takes per row; replay is undefined for a stochastic one."""
    top = target_probs.max(axis=1)
    check_rows("`target_probs`", top, top >= 1 - _SUM_TOLERANCE,
               "must put probability 1 on one action (replay needs a deterministic target)")
    return target_probs.argmax(axis=1)


def _ratio(name: str, num: np.ndarray, den: np.ndarray) -> float:
    """Σ_k Σ_i num_ki / Σ_i den_ki, for arrays of shape (n_parts, n_rounds) or (n_rounds,)."""
    totals = np.atleast_2d(den).sum(axis=1)
    if (totals <= 0).any():
        what = "no logged action matches the target's" if name == Replay.name else "all importance weights are 0"
        raise ValueError(f"{name} is undefined on these rounds: {what}")
    return float((np.atleast_2d(num).sum(axis=1) / totals).sum())
