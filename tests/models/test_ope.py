"""Off-policy estimators against hand-computed values and a synthetic bandit with a known truth; evaluation
end to end, through ``sendwise evaluate``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.testing as npt
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.tree import DecisionTreeClassifier

from sendwise.cli.main import main
from sendwise.models import Catalog, LoggedFeedback, ThompsonPolicy, dm, dr, ips, replay, snips, write_logs
from sendwise.models.ope.estimators import DR, IPS, SNIPS, Replay, cross_fit_q_hat
from sendwise.models.ope.evaluation import decision_batch, evaluate, resolve_policy, target_probabilities

# Four rounds, three actions. Weights w = π(a_i | x_i) / μ_i = [1, 4, 0.8, 4].
REWARD = np.array([1.0, 0.0, 1.0, 1.0])
ACTION = np.array([0, 1, 1, 2])
PROPENSITY = np.array([0.5, 0.25, 0.25, 0.25])
TARGET = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6], [0.0, 0.0, 1.0]])
Q_HAT = np.array([[0.5, 0.2, 0.1], [0.3, 0.4, 0.2], [0.1, 0.5, 0.5], [0.6, 0.2, 0.9]])


def test_estimators_match_hand_computed_values() -> None:
    assert ips(REWARD, ACTION, PROPENSITY, TARGET) == pytest.approx((1 + 0 + 0.8 + 4) / 4)
    assert ips(REWARD, ACTION, PROPENSITY, TARGET, clip=2.0) == pytest.approx((1 + 0 + 0.8 + 2) / 4)
    assert snips(REWARD, ACTION, PROPENSITY, TARGET) == pytest.approx(5.8 / 9.8)
    # Σ_a π q̂ per round: 0.35, 0.4, 0.42, 0.9
    assert dm(TARGET, Q_HAT) == pytest.approx(2.07 / 4)
    # residuals r − q̂(a_i): 0.5, −0.4, 0.5, 0.1; weighted: 0.5, −1.6, 0.4, 0.4
    assert dr(REWARD, ACTION, PROPENSITY, TARGET, Q_HAT) == pytest.approx((2.07 - 0.3) / 4)
    assert dr(REWARD, ACTION, PROPENSITY, TARGET, Q_HAT, clip=1.0) == pytest.approx((2.07 + 0.5 - 0.4 + 0.4 + 0.1) / 4)
    assert replay(REWARD, ACTION, np.array([0, 1, 2, 2])) == pytest.approx(2 / 3)


def test_weight_diagnostics() -> None:
    ess, max_weight = IPS().diagnostics(REWARD, ACTION, PROPENSITY, TARGET)
    assert ess == pytest.approx(9.8**2 / (1 + 16 + 0.64 + 16))
    assert max_weight == 4.0
    assert IPS(clip=2.0).diagnostics(REWARD, ACTION, PROPENSITY, TARGET).max_weight == 2.0
    one_hot = np.eye(3)[[0, 1, 2, 2]]
    assert Replay().diagnostics(REWARD, ACTION, PROPENSITY, one_hot) == (3.0, 1.0)  # three matching rounds


INVALID_INPUTS = [
    pytest.param({"propensity": [0.5, 0.0, 0.25, 0.25]}, "`propensity`, row 1: must lie in (0, 1]; got 0.0",
                 id="zero-propensity"),
    pytest.param({"reward": [1.0, np.nan, 1.0, 1.0]}, "`reward`, row 1: must be finite; got nan", id="nan-reward"),
    pytest.param({"action": [0, 1, 3, 2]}, "`action`, row 2: must be an action id in [0, 3); got 3", id="action"),
    pytest.param({"target_probs": TARGET * [[1.0], [0.5], [1.0], [1.0]]},
                 "`target_probs`, row 1: must sum to 1 over the actions; got 0.5", id="target-sum"),
    pytest.param({"target_probs": TARGET[:3]}, "`target_probs` must have 4 rows like `reward`; got 3", id="rows"),
    pytest.param({"propensity": [0.5, 0.5]}, "`propensity` must have shape (4,) like `reward`; got (2,)", id="length"),
]


@pytest.mark.parametrize("change, msg", INVALID_INPUTS)
def test_estimators_reject_bad_inputs(change: dict, msg: str) -> None:
    args = {"reward": REWARD, "action": ACTION, "propensity": PROPENSITY, "target_probs": TARGET, **change}
    for estimate in (ips, snips):
        with pytest.raises(ValueError, match=f"^{re.escape(msg)}$"):
            estimate(**args)


INVALID_CALLS = [
    pytest.param(lambda: ips(REWARD, ACTION.astype(float), PROPENSITY, TARGET), TypeError,
                 "`action` must be an integer array; got dtype float64", id="float-actions"),
    pytest.param(lambda: IPS(clip=-1.0), ValueError, "`clip` must be None or a number > 0; got -1.0", id="clip"),
    pytest.param(lambda: DR().estimate_policy_value(REWARD, ACTION, PROPENSITY, TARGET), ValueError,
                 "`q_hat` is required: this estimator needs a reward model's predictions", id="no-q-hat"),
    pytest.param(lambda: dm(TARGET, Q_HAT[:, :2]), ValueError,
                 "`q_hat` must have shape (4, 3) like `target_probs`; got (4, 2)", id="q-hat-shape"),
    pytest.param(lambda: Replay().estimate_policy_value(REWARD, ACTION, PROPENSITY, TARGET), ValueError,
                 "`target_probs`, row 0: must put probability 1 on one action (replay needs a deterministic "
                 "target); got 0.5", id="stochastic-replay"),
    pytest.param(lambda: replay(REWARD, ACTION, [1, 0, 0, 0]), ValueError,
                 "replay is undefined on these rounds: no logged action matches the target's", id="no-match"),
    pytest.param(lambda: IPS().estimate_interval(REWARD, ACTION, PROPENSITY, TARGET, alpha=1.0), ValueError,
                 "`alpha` must lie in (0, 1); got 1.0", id="alpha"),
]


@pytest.mark.parametrize("call, err, msg", INVALID_CALLS)
def test_estimator_errors(call: Callable[[], object], err: type, msg: str) -> None:
    with pytest.raises(err, match=f"^{re.escape(msg)}$"):
        call()


# A synthetic logged bandit: 3 contexts × 4 actions, uniform logging, known target, exact truth.
RATES = np.array([[0.05, 0.90, 0.50, 0.10], [0.90, 0.05, 0.10, 0.80], [0.10, 0.20, 0.95, 0.05]])
CONTEXT_P = np.array([0.5, 0.3, 0.2])
POLICY = np.array([[0.1, 0.2, 0.6, 0.1], [0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
TRUTH = float(CONTEXT_P @ (POLICY * RATES).sum(axis=1))


def synthetic_log(n_rounds: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    context = rng.choice(3, n_rounds, p=CONTEXT_P)
    action = rng.integers(0, 4, n_rounds)
    reward = (rng.random(n_rounds) < RATES[context, action]).astype(float)
    return context, reward, action, np.full(n_rounds, 0.25), POLICY[context]


def test_estimators_are_unbiased_on_a_known_bandit() -> None:
    """Mean over 200 logs of 500 rounds lies within 4 standard errors of the exact value."""
    runs = [synthetic_log(500, seed) for seed in range(200)]
    estimates = {
        "ips": [ips(r, a, p, t) for _, r, a, p, t in runs],
        "dr": [dr(r, a, p, t, RATES[c]) for c, r, a, p, t in runs],
        "snips": [snips(r, a, p, t) for _, r, a, p, t in runs],  # biased O(1/n): far below 4 SE here
    }
    for name, values in estimates.items():
        mean, se = np.mean(values), np.std(values) / np.sqrt(len(values))
        assert abs(mean - TRUTH) < 4 * se, f"{name}: mean={mean:.4f} truth={TRUTH:.4f} tol=4*SE={4 * se:.4f}"
    # DR with the true reward model keeps only the reward noise and the spread of contexts.
    var_dr, var_ips = np.var(estimates["dr"]), np.var(estimates["ips"])
    assert var_dr < 0.75 * var_ips, f"var(DR)={var_dr:.2e} var(IPS)={var_ips:.2e}: want var(DR) < 0.75 var(IPS)"


def test_estimators_are_consistent_on_a_known_bandit() -> None:
    """On 200,000 rounds every estimator lies within 0.01 of the truth (about 4 standard errors of IPS)."""
    context, reward, action, propensity, target = synthetic_log(200_000, seed=1)
    biased_q_hat = np.clip(RATES[context] + 0.2, 0, 1)  # DR stays right with a wrong model
    for name, value in {
        "ips": ips(reward, action, propensity, target),
        "snips": snips(reward, action, propensity, target),
        "dr": dr(reward, action, propensity, target, biased_q_hat),
    }.items():
        assert abs(value - TRUTH) < 0.01, f"{name}={value:.4f} truth={TRUTH:.4f} tol=0.01"


def test_replay_matches_the_on_policy_value_of_a_deterministic_target() -> None:
    context, reward, action, _, _ = synthetic_log(200_000, seed=2)
    best = RATES.argmax(axis=1)
    on_policy = float(CONTEXT_P @ RATES.max(axis=1))
    value = replay(reward, action, best[context])
    assert abs(value - on_policy) < 0.01, f"replay={value:.4f} on-policy={on_policy:.4f} tol=0.01"
    one_hot = np.eye(4)[best[context]]
    assert Replay().estimate_policy_value(reward, action, np.full(reward.size, 0.25), one_hot) == value


def test_bootstrap_intervals_are_seeded_and_cover_the_truth() -> None:
    _, reward, action, propensity, target = synthetic_log(400, seed=5)
    first = SNIPS().estimate_interval(reward, action, propensity, target, n_bootstrap=300, random_state=7)
    assert first == SNIPS().estimate_interval(reward, action, propensity, target, n_bootstrap=300, random_state=7)
    assert first != SNIPS().estimate_interval(reward, action, propensity, target, n_bootstrap=300, random_state=8)
    covered = [
        low <= TRUTH <= high
        for low, high in (IPS().estimate_interval(*synthetic_log(400, seed)[1:], n_bootstrap=300, random_state=seed)
                          for seed in range(100, 160))
    ]
    assert np.mean(covered) >= 0.85, f"95% intervals covered the truth in {np.mean(covered):.0%} of 60 logs (>= 85%)"


def test_cross_fitting_uses_only_the_other_folds() -> None:
    """With a mean-only model, a round's q̂ is the mean reward of the other folds, never its own."""
    rng = np.random.default_rng(0)
    reward = rng.random(10)
    q_hat = cross_fit_q_hat(np.zeros((10, 1)), np.zeros(10, np.int64), reward, 2, model=DummyRegressor(),
                            n_folds=10, random_state=0)
    npt.assert_allclose(q_hat[:, 0], (reward.sum() - reward) / 9)
    npt.assert_allclose(q_hat[:, 1], q_hat[:, 0])


def test_reward_models_default_additive_or_any_sklearn_model() -> None:
    context, reward, action, _, _ = synthetic_log(3000, seed=3)
    additive = cross_fit_q_hat(np.eye(3)[context], action, reward, 4, random_state=0)
    assert additive.shape == (3000, 4) and np.all((additive > 0) & (additive < 1))
    per_action = [reward[action == a].mean() for a in range(4)]
    npt.assert_allclose(additive.mean(axis=0), per_action, atol=0.05)  # the action effects, averaged over contexts
    tree = cross_fit_q_hat(np.eye(3)[context], action, reward, 4, model=DecisionTreeClassifier(min_samples_leaf=30),
                           random_state=0)  # learns the context × action interactions
    npt.assert_allclose(tree, RATES[context], atol=0.1)


# Evaluation of sendwise policies on catalog logs.
CATALOG = Catalog(regions=("NA", "EU"), industries=("ecommerce", "gaming"))


def catalog_log(n_rounds: int = 300, allowed: list[str] | None = None) -> LoggedFeedback:
    rng = np.random.default_rng(11)
    context = pd.DataFrame({"region": rng.choice(CATALOG.regions, n_rounds),
                            "industry": rng.choice(CATALOG.industries, n_rounds), "campaign_type": "broadcast"})
    if allowed is not None:
        context["allowed_channels"] = allowed
    click = (rng.random(n_rounds) < 0.2).astype(float)
    return LoggedFeedback(action=rng.integers(0, CATALOG.n_arms, n_rounds), propensity=np.full(n_rounds, 1 / 169),
                          reward=click, context=context, outcomes=pd.DataFrame({"click": click}), catalog=CATALOG)


def trained_policy() -> ThompsonPolicy:
    policy = ThompsonPolicy(CATALOG, np.array([1.0, 0.0]), np.zeros((2, CATALOG.n_arms)), random_state=0)
    policy.beta_[:, 0, :] += 50.0  # every arm has been seen failing ...
    policy.alpha_[:, 0, CATALOG.arm("email", 9)] += 50.0  # ... except email at 9, clearly the best in every cell
    return policy


def test_decision_batch_reads_cells_and_allowed_channels() -> None:
    batch = decision_batch(catalog_log(2, allowed=["sms|email", ""]))
    assert batch.mask[0].sum() == 2 * 24 + 1 and batch.mask[0, CATALOG.arm("sms", 3)]
    assert batch.mask[1].tolist() == [False] * CATALOG.null_arm + [True]  # no channel: only no message


def test_target_probabilities_come_from_the_propensity_kernel_once_per_request() -> None:
    log = catalog_log()
    probs = target_probabilities(trained_policy(), log, n_draws=200)
    assert probs.shape == (300, 169)
    npt.assert_allclose(probs.sum(axis=1), 1.0)
    cell = CATALOG.cell_ids(log.context["region"].map(CATALOG.regions.index),
                            log.context["industry"].map(CATALOG.industries.index), np.zeros(300, np.int64))
    first = {c: np.flatnonzero(cell == c)[0] for c in np.unique(cell)}
    npt.assert_array_equal(probs, probs[[first[c] for c in cell]])  # rows of one request share probabilities
    assert probs[:, CATALOG.arm("email", 9)].min() > 0.9


def test_evaluate_tabulates_every_estimator() -> None:
    log = catalog_log()
    probs = target_probabilities(trained_policy(), log, n_draws=200)
    result = evaluate(log, probs, estimators=["ips", "snips", "dm", "dr"], n_bootstrap=100, random_state=0)
    assert [r.estimator for r in result.rows] == ["logged", "ips", "snips", "dm", "dr"]
    assert result.estimate("logged").estimate == pytest.approx(log.reward.mean())
    assert result.estimate("ips").estimate == pytest.approx(ips(log.reward, log.action, log.propensity, probs))
    assert all(r.low <= r.estimate <= r.high for r in result.rows)


INVALID_REFS = [
    pytest.param("greedy", None, "unknown policy 'greedy'; give a saved policy .npz file or one of: ", id="unknown"),
    pytest.param("ts", None, "policy 'ts' is built on the catalog of the logs, but these logs have none (plain "
                 "actions); give a saved policy or target probabilities instead", id="no-catalog"),
    pytest.param("runs:/abc/policy", CATALOG, "no loader for 'runs' policy URIs (known schemes: ", id="uri"),
    pytest.param("absent.npz", CATALOG, "policy file 'absent.npz' does not exist", id="missing-file"),
]


@pytest.mark.parametrize("ref, catalog, msg", INVALID_REFS)
def test_resolve_policy_errors(ref: str, catalog: Catalog | None, msg: str) -> None:
    with pytest.raises((ValueError, FileNotFoundError), match=f"^{re.escape(msg)}"):
        resolve_policy(ref, catalog)


def test_sendwise_evaluate_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = write_logs(catalog_log(), tmp_path / "logs.parquet")
    policy = trained_policy().save(tmp_path / "policy.npz")
    out = tmp_path / "result.json"
    code = main(["evaluate", "--no-track", "--logs", str(logs), "--policy", str(policy), "--estimators", "ips,snips,dr",
                 "--json", str(out), "--seed", "3", "--n-draws", "200", "--bootstrap", "200"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"target: policy {policy}" in printed
    assert "logs:   logs.parquet (300 decisions, 169 actions)" in printed
    header = next(line for line in printed.splitlines() if line.startswith("estimator"))
    assert header.split() == ["estimator", "estimate", "95%", "interval", "ESS", "max", "weight"]
    table = {line.split()[0]: line for line in printed.splitlines()[4:8]}
    assert list(table) == ["logged", "ips", "snips", "dr"]
    result = json.loads(out.read_text())
    assert [row["estimator"] for row in result["rows"]] == ["logged", "ips", "snips", "dr"]
    assert f"{result['rows'][1]['estimate']:.5f}" in table["ips"]


def test_sendwise_evaluate_with_a_named_policy_and_target_probs(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    logs = write_logs(catalog_log(), tmp_path / "logs.csv")
    assert main(["evaluate", "--no-track", "--logs", str(logs), "--policy", "ts", "--estimators", "snips",
                 "--n-draws", "100", "--bootstrap", "50"]) == 0
    assert "target: policy ts" in capsys.readouterr().out
    probs = tmp_path / "always_first.npy"
    np.save(probs, np.eye(169)[np.zeros(300, np.int64)])
    assert main(["evaluate", "--no-track", "--logs", str(logs), "--target-probs", str(probs),
                 "--estimators", "replay,ips",
                 "--bootstrap", "50"]) == 0
    assert "target: target probabilities always_first.npy" in capsys.readouterr().out
    assert main(["evaluate", "--no-track", "--logs", str(logs), "--target-probs", str(probs),
                 "--estimators", "magic"]) == 2
    assert capsys.readouterr().err == ("sendwise evaluate: error: unknown estimator 'magic'; "
                                       "known: ips, snips, dm, dr, switch-dr, dr-os, sndr, replay, logged\n")
