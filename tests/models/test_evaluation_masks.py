"""Evaluation on logs that record what the logging policy chose from: targets decide under the logged masks,
and decisions where the target leaves the logged support are counted."""

from __future__ import annotations

import numpy as np
import numpy.testing as npt
import pandas as pd

from sendwise.models import Catalog, DecisionBatch, EpsilonGreedyPolicy, LoggedFeedback, ThompsonPolicy
from sendwise.models.ope.estimators import ips
from sendwise.models.ope.evaluation import decision_batch, evaluate, support_violations, target_probabilities

CATALOG = Catalog(regions=("NA", "EU"), industries=("ecommerce", "gaming"))
BEST = CATALOG.arm("email", 9)


def context(n_rounds: int, rng: np.random.Generator) -> pd.DataFrame:
    return pd.DataFrame({"region": rng.choice(CATALOG.regions, n_rounds),
                         "industry": rng.choice(CATALOG.industries, n_rounds), "campaign_type": "broadcast"})


def quiet_hours_log(n_rounds: int = 200) -> LoggedFeedback:
    """Uniform logging over a mask that never allowed email at 9 (quiet hours), with every channel reachable."""
    rng = np.random.default_rng(5)
    allowed = np.ones((n_rounds, CATALOG.n_arms), dtype=np.bool_)
    allowed[:, CATALOG.arm("email", 6):CATALOG.arm("email", 12)] = False
    action = np.array([rng.choice(np.flatnonzero(row)) for row in allowed])
    reward = (rng.random(n_rounds) < np.where(action == CATALOG.arm("email", 14), 0.9, 0.1)).astype(float)
    return LoggedFeedback(action=action, propensity=1.0 / allowed.sum(axis=1), reward=reward,
                          context=context(n_rounds, rng), catalog=CATALOG, allowed=allowed,
                          support_size=allowed.sum(axis=1).astype(float))


def email_at_9_policy() -> ThompsonPolicy:
    policy = ThompsonPolicy(CATALOG, np.array([1.0, 0.0]), np.zeros((2, CATALOG.n_arms)), random_state=0)
    policy.beta_[:, 0, :] += 50.0
    policy.alpha_[:, 0, BEST] += 50.0  # email at 9 is clearly the best ...
    policy.alpha_[:, 0, CATALOG.arm("email", 14)] += 20.0  # ... then email at 14
    return policy


def without_masks(log: LoggedFeedback) -> LoggedFeedback:
    return LoggedFeedback(action=log.action, propensity=log.propensity, reward=log.reward, context=log.context,
                          catalog=log.catalog)


def test_the_decision_batch_takes_the_logged_mask_over_allowed_channels() -> None:
    log = quiet_hours_log(4)
    with_channels = LoggedFeedback(action=log.action, propensity=log.propensity, reward=log.reward,
                                   context=log.context.assign(allowed_channels="email"), catalog=CATALOG,
                                   allowed=log.allowed)
    npt.assert_array_equal(decision_batch(with_channels).mask, log.allowed)
    assert decision_batch(without_masks(log)).mask.all()


def test_targets_decide_under_the_logged_masks_not_masks_rebuilt_from_channels() -> None:
    log = quiet_hours_log()
    policy = email_at_9_policy()
    probs = target_probabilities(policy, log, n_draws=400)
    rebuilt = target_probabilities(policy, without_masks(log), n_draws=400)
    assert np.all(probs[~log.allowed] == 0.0)
    assert probs[:, CATALOG.arm("email", 14)].min() > 0.9  # the best arm the customers could get
    assert rebuilt[:, BEST].min() > 0.9  # rebuilt from channels: an arm no customer could get
    masked = evaluate(log, probs, estimators=["ips"], n_bootstrap=50, random_state=0)
    unmasked = evaluate(log, rebuilt, estimators=["ips"], n_bootstrap=50, random_state=0)
    assert masked.estimate("ips").estimate == ips(log.reward, log.action, log.propensity, probs)
    assert masked.estimate("ips").estimate > 0.7 > 0.1 > unmasked.estimate("ips").estimate
    assert (masked.support_violations, unmasked.support_violations) == (0, log.n_rounds)
    assert "support: on 200 of 200 decisions the target gives positive probability" in unmasked.format_table()
    assert unmasked.to_dict()["support_violations"] == 200


def test_a_target_equal_to_the_logging_policy_has_weights_exactly_one() -> None:
    rng = np.random.default_rng(9)
    n_rounds = 500
    policy = EpsilonGreedyPolicy(CATALOG, np.array([1.0, 0.0]), np.zeros((2, CATALOG.n_arms)), epsilon=0.2,
                                 random_state=1)
    policy.alpha_[:, 0, rng.integers(0, CATALOG.n_arms, 30)] += rng.integers(1, 5, 30)
    allowed = CATALOG.arm_mask(rng.random((n_rounds, len(CATALOG.channels))) < 0.5,
                               rng.random((n_rounds, len(CATALOG.channels), 24)) < 0.6)
    ctx = context(n_rounds, rng)
    cell = CATALOG.cell_ids(ctx["region"].map(CATALOG.regions.index), ctx["industry"].map(CATALOG.industries.index),
                            np.zeros(n_rounds, np.int64))
    logging = policy.propensities(DecisionBatch(cell, ctx["region"].map(CATALOG.regions.index).to_numpy(), allowed))
    action = np.array([rng.choice(CATALOG.n_arms, p=row) for row in logging])
    log = LoggedFeedback(action=action, propensity=logging[np.arange(n_rounds), action],
                         reward=rng.random(n_rounds), context=ctx, catalog=CATALOG, allowed=allowed,
                         support_size=(logging > 0).sum(axis=1).astype(float), epsilon=np.full(n_rounds, 0.2))
    probs = target_probabilities(policy, log)
    npt.assert_array_equal(probs[np.arange(n_rounds), log.action] / log.propensity, np.ones(n_rounds))
    result = evaluate(log, probs, estimators=["ips", "snips"], n_bootstrap=50, random_state=0)
    assert result.estimate("ips").estimate == result.estimate("logged").estimate == log.reward.mean()
    assert result.estimate("ips").max_weight == 1.0
    assert result.support_violations == 0


def test_support_violations_count_rows_that_surely_leave_the_logged_support() -> None:
    allowed = np.array([[True, True, False], [True, True, True], [True, True, True], [True, True, True]])
    log = LoggedFeedback(action=[0, 0, 1, 2], propensity=[0.5, 1.0, 0.5, 0.5], reward=[1.0, 0.0, 1.0, 0.0],
                         n_actions=3, allowed=allowed, support_size=[2, 1, np.nan, 3])
    target = np.array([[0.5, 0.0, 0.5],  # mass outside the allowed arms
                       [0.5, 0.5, 0.0],  # two arms, but the logging policy gave one any probability
                       [1 / 3, 1 / 3, 1 / 3],  # support size not recorded: nothing known to be wrong
                       [1 / 3, 1 / 3, 1 / 3]])
    assert support_violations(log, target) == 2
    assert support_violations(without_masks_plain(log), target) is None
    result = evaluate(log, target, estimators=["ips"], n_bootstrap=20, random_state=0)
    assert result.support_violations == 2  # reported, not raised


def without_masks_plain(log: LoggedFeedback) -> LoggedFeedback:
    return LoggedFeedback(action=log.action, propensity=log.propensity, reward=log.reward, n_actions=log.n_actions)
