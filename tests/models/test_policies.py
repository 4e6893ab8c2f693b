"""Every registered policy: masks respected, state round-trips, learning bookkeeping, clear errors."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.engine import reference as ref
from sendwise.models import POLICIES, Catalog, DecisionBatch, Learner, Outcomes, load_policy
from sendwise.models.policies.base import OpenCounts, OpenMessagesPolicy, sample_choices
from sendwise.models.policies.thompson import hierarchy_levels
from tests.support.learning import sent_and_resolved

CATALOG = Catalog(channels=("email", "push", "sms"), regions=("NA", "EU"), industries=("retail", "gaming"),
                  campaign_types=("broadcast", "cart"))
VALUE = np.array([1.0, -2.0])
COST = np.tile(np.append(np.repeat([0.001, 0.0002, 0.03], 24), 0.0), (2, 1))
PLAYBOOK = {"retail": ["push", 19], "gaming": ["email", 10]}
PARAMS: dict[str, dict] = {"static": {"playbook": PLAYBOOK}, "random_hour": {"playbook": PLAYBOOK},
                           "hier_ts": {"discount": 0.9}}
REPO = Path(__file__).resolve().parents[2]


def make_policy(name: str, seed: int = 0, **params):
    return POLICIES[name](CATALOG, VALUE, COST, random_state=seed, **{**PARAMS.get(name, {}), **params})


def make_batch(seed: int, n_rows: int = 64, mask: np.ndarray | None = None) -> DecisionBatch:
    """Random rows with random masks, customers and (for the oracles) truth."""
    rng = np.random.default_rng(seed)
    if mask is None:
        mask = rng.random((n_rows, CATALOG.n_arms)) < 0.3
        mask[:, -1] = rng.random(n_rows) < 0.8
        mask[np.arange(n_rows), rng.integers(0, CATALOG.n_arms, n_rows)] = True
    n_rows = mask.shape[0]
    rates = np.stack([rng.uniform(0.0, 0.2, (n_rows, CATALOG.n_arms)),
                      rng.uniform(0.0, 0.01, (n_rows, CATALOG.n_arms))], axis=1)
    return DecisionBatch(cell_idx=rng.integers(0, CATALOG.n_cells, n_rows), cost_row_idx=rng.integers(0, 2, n_rows),
                         mask=mask, customer_idx=rng.integers(0, 30, n_rows), true_rates=rates,
                         segment_rates=rates.mean(axis=0, keepdims=True).repeat(n_rows, axis=0))


def outcomes_of(batch: DecisionBatch, arm: np.ndarray, seed: int) -> Outcomes:
    """One click row and one unsubscribe row per decision, drawn from the batch's truth."""
    rng = np.random.default_rng(seed)
    rows = np.arange(batch.n_rows)
    happened = rng.random((2, batch.n_rows)) < batch.true_rates[rows, :, arm].T
    return Outcomes(cell_idx=np.tile(batch.cell_idx, 2), arm=np.tile(arm, 2),
                    outcome_idx=np.repeat([0, 1], batch.n_rows), successes=happened.ravel().astype(float),
                    failures=(~happened).ravel().astype(float), customer_idx=np.tile(batch.customer_idx, 2))


def trained(name: str, n_rounds: int = 4, seed: int = 0):
    """A policy after ``n_rounds`` resolved batches and one more sent batch whose outcomes are still open."""
    learner = Learner(make_policy(name, seed))
    keys = itertools.count()
    for r in range(n_rounds):
        learner.resolve(sent_and_resolved(learner, make_batch(100 + r), r, keys))
    sent_and_resolved(learner, make_batch(100 + n_rounds), n_rounds, keys)
    learner.advance(48.0)  # the open messages are two days old
    learner.posterior()  # hands them to the policy
    return learner.policy




@pytest.mark.parametrize("name", sorted(POLICIES))
def test_save_load_round_trip_gives_identical_decisions(name, tmp_path):
    policy = trained(name)
    loaded = load_policy(policy.save(tmp_path / f"{name}.npz"), random_state=7)
    assert loaded.get_params() == policy.get_params()
    json.dumps(loaded.get_params())  # JSON-friendly
    for state in policy.state_names:
        np.testing.assert_array_equal(getattr(loaded, state), getattr(policy, state))
    if isinstance(policy, OpenMessagesPolicy):
        assert policy.pending_.sum() > 0  # the last batch's messages are still open, and kept
    policy.reseed(7)
    batch = make_batch(999)
    first, second = policy.decide(batch), loaded.decide(batch)
    np.testing.assert_array_equal(first.arm, second.arm)
    np.testing.assert_array_equal(first.explored, second.explored)


@pytest.mark.parametrize("name", sorted(POLICIES))
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_masked_arm_is_never_chosen(name, data):
    n_rows = data.draw(st.integers(1, 12))
    flat = data.draw(st.lists(st.booleans(), min_size=n_rows * CATALOG.n_arms, max_size=n_rows * CATALOG.n_arms))
    mask = np.array(flat).reshape(n_rows, CATALOG.n_arms)
    forced = data.draw(st.lists(st.integers(0, CATALOG.n_arms - 1), min_size=n_rows, max_size=n_rows))
    mask[np.arange(n_rows), forced] = True  # at least one allowed arm per row
    policy = trained(name, n_rounds=1, seed=data.draw(st.integers(0, 100)))
    policy.epsilon = data.draw(st.sampled_from([0.0, 0.5, 1.0])) if name != "random" else 0.0
    batch = make_batch(data.draw(st.integers(0, 10_000)), mask=mask)
    arm = policy.decide(batch).arm
    assert mask[np.arange(n_rows), arm].all()
    probs = policy.propensities(batch, bank_draws=20)
    assert (probs[~mask] == 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


@pytest.mark.parametrize("name, truth", [("oracle", "true_rates"), ("segment_oracle", "segment_rates")])
def test_oracles_pick_the_best_allowed_net_value(name, truth):
    batch = make_batch(5, n_rows=200)
    net = np.einsum("o,roa->ra", VALUE, getattr(batch, truth)) - COST[batch.cost_row_idx]
    net[:, CATALOG.null_arm] = 0.0
    best = np.where(batch.mask, net, -np.inf).argmax(axis=1)
    np.testing.assert_array_equal(make_policy(name).decide(batch).arm, best)


def test_oracle_sends_nothing_when_every_send_loses_value():
    batch = make_batch(6, n_rows=10)
    batch.mask[:, -1] = True
    batch.true_rates[:, 0, :] = 0.0  # no clicks anywhere: every send costs without return
    assert (make_policy("oracle").decide(batch).arm == CATALOG.null_arm).all()


@pytest.mark.parametrize("name, field", [("oracle", "true_rates"), ("segment_oracle", "segment_rates")])
def test_oracles_need_the_truth(name, field):
    batch = make_batch(1)
    blind = DecisionBatch(cell_idx=batch.cell_idx, cost_row_idx=batch.cost_row_idx, mask=batch.mask)
    with pytest.raises(ValueError, match=re.escape(f"policy {name!r} needs `batch.{field}` (set by the simulator)")):
        make_policy(name).decide(blind)


def test_random_sends_uniformly_and_only_sends_nothing_when_forced():
    mask = np.ones((4000, CATALOG.n_arms), dtype=bool)
    mask[0] = False
    mask[0, -1] = True
    decisions = make_policy("random").decide(make_batch(0, mask=mask))
    assert decisions.arm[0] == CATALOG.null_arm and (decisions.arm[1:] != CATALOG.null_arm).all()
    assert decisions.explored.all()
    counts = np.bincount(decisions.arm[1:], minlength=CATALOG.n_arms)[:-1]
    assert counts.min() > 0 and counts.max() < 3 * counts.mean()


def test_static_follows_the_playbook_then_the_nearest_hour_then_the_cheapest_channel():
    cell = CATALOG.cell("NA", "retail", "cart")
    mask = np.ones((4, CATALOG.n_arms), dtype=bool)
    mask[1, CATALOG.arm("push", 19)] = False                       # → push at 18 (tie 18/20 goes earlier)
    mask[2, [CATALOG.arm("push", h) for h in range(24)]] = False   # → cheapest other channel at 19: email
    mask[3, :-1] = False                                           # → nothing allowed but no message
    batch = DecisionBatch(cell_idx=np.full(4, cell), cost_row_idx=np.zeros(4, np.int64), mask=mask)
    arms = make_policy("static").decide(batch).arm
    assert arms.tolist() == [CATALOG.arm("push", 19), CATALOG.arm("push", 18), CATALOG.arm("email", 19),
                             CATALOG.null_arm]


def test_user_heuristic_repeats_the_last_click_and_falls_back_to_the_cells_best_arm():
    policy = make_policy("user_heuristic")
    cell = CATALOG.cell("EU", "gaming", "broadcast")
    arm_a, arm_b, arm_best = CATALOG.arm("sms", 8), CATALOG.arm("email", 21), CATALOG.arm("push", 12)
    policy.update(Outcomes(cell_idx=np.full(4, cell), arm=np.array([arm_a, arm_b, arm_best, arm_best]),
                           outcome_idx=np.zeros(4, np.int64), successes=np.array([1.0, 1.0, 30.0, 0.0]),
                           failures=np.array([49.0, 49.0, 270.0, 0.0]), customer_idx=np.array([3, 3, 9, 9])))
    mask = np.ones((3, CATALOG.n_arms), dtype=bool)
    mask[2, arm_b] = False
    batch = DecisionBatch(cell_idx=np.full(3, cell), cost_row_idx=np.ones(3, np.int64), mask=mask,
                          customer_idx=np.array([3, 25, 3]))
    assert policy.decide(batch).arm.tolist() == [arm_b, arm_best, arm_best]
    assert policy.last_click_arm_.shape == (26,)


def test_hier_ts_cell_without_counts_starts_from_its_region():
    policy = make_policy("hier_ts")
    data_cell, empty_cell = CATALOG.cell("NA", "retail", "broadcast"), CATALOG.cell("NA", "gaming", "cart")
    arms = np.arange(10)
    policy.update(Outcomes(cell_idx=np.full(10, data_cell), arm=arms, outcome_idx=np.zeros(10, np.int64),
                           successes=np.arange(10.0), failures=np.full(10, 50.0)))
    alpha, beta = policy.posterior()
    region_counts = [policy.successes_.sum(axis=0)[0], policy.successes_.sum(axis=0)[0]]
    region = ref.pooled_posterior(region_counts, [policy.failures_.sum(axis=0)[0]] * 2, policy.prior_strength)
    np.testing.assert_allclose((alpha / (alpha + beta))[empty_cell, 0], region[0] / (region[0] + region[1]))
    other_region = CATALOG.cell("EU", "gaming", "cart")
    assert not np.allclose(alpha[empty_cell, 0, arms], alpha[other_region, 0, arms])


def test_hierarchy_levels_drop_levels_that_repeat_the_one_below():
    assert len(hierarchy_levels(CATALOG)) == 2
    one_campaign = Catalog(regions=("NA", "EU"), industries=("a", "b"))
    levels = hierarchy_levels(one_campaign)
    assert len(levels) == 1 and levels[0].tolist() == [0, 0, 1, 1]
    assert hierarchy_levels(Catalog()) == []


@pytest.mark.parametrize("name, counts", [("ts", ("alpha_", "beta_")), ("egreedy", ("alpha_", "beta_")),
                                          ("ucb1", ("successes_", "failures_")),
                                          ("hier_ts", ("successes_", "failures_")),
                                          ("user_heuristic", ("clicks_", "non_clicks_"))])
def test_update_conserves_counts(name, counts):
    policy = make_policy(name)
    before = [getattr(policy, c).sum() for c in counts]
    batch = make_batch(3)
    outcomes = outcomes_of(batch, policy.decide(batch).arm, 0)
    policy.update(outcomes)
    learned = outcomes.arm != CATALOG.null_arm
    if name == "user_heuristic":
        learned &= outcomes.outcome_idx == 0
    after = [getattr(policy, c).sum() for c in counts]
    assert after[0] - before[0] == pytest.approx(outcomes.successes[learned].sum())
    assert after[1] - before[1] == pytest.approx(outcomes.failures[learned].sum())


def test_hier_ts_personal_evidence_grows_per_customer_and_discounts_but_open_messages_do_not_fade():
    policy = make_policy("hier_ts")
    batch = make_batch(4)
    policy.update(outcomes_of(batch, policy.decide(batch).arm, 1))
    assert policy.personal_observed_.shape == (batch.customer_idx.max() + 1, 2, 3)
    assert policy.personal_observed_.sum() > 0
    policy.set_open(OpenCounts(np.full(policy.pending_.shape, 0.5)))
    total = policy.successes_.sum() + policy.personal_observed_.sum()
    policy.advance(2.0)
    assert policy.successes_.sum() + policy.personal_observed_.sum() == pytest.approx(0.81 * total)
    assert policy.pending_.sum() == pytest.approx(0.5 * policy.pending_.size)


def test_open_counts_of_the_wrong_shape_are_refused():
    with pytest.raises(ValueError, match=re.escape("open counts must have shape (8, 2, 73); got (8, 73)")):
        make_policy("ts").set_open(OpenCounts(np.zeros((8, 73))))


def test_greedy_propensities_are_exact():
    policy = make_policy("egreedy", epsilon=0.2)
    batch = make_batch(8, n_rows=3)
    probs = policy.propensities(batch)
    allowed = batch.mask.sum(axis=1)
    assert probs[batch.mask].min() >= 0.2 / allowed.max() - 1e-12
    many = np.stack([make_policy("egreedy", seed, epsilon=0.2).decide(batch).arm for seed in range(3000)])
    empirical = np.stack([np.bincount(many[:, i], minlength=CATALOG.n_arms) / 3000 for i in range(3)])
    np.testing.assert_allclose(empirical, probs, atol=0.03)


BAD_PARAMS = [
    pytest.param("ts", {"epsilon": 1.5}, ValueError, "`epsilon` must be a finite number >= 0 and <= 1; got 1.5",
                 id="epsilon-above-one"),
    pytest.param("hier_ts", {"prior_strength": 0}, ValueError, "`prior_strength` must be a finite number > 0; got 0",
                 id="zero-strength"),
    pytest.param("hier_ts", {"sharpness": -1.0}, ValueError, "`sharpness` must be a finite number > 0; got -1.0",
                 id="negative-sharpness"),
    pytest.param("hier_ts", {"discount": 0.0}, ValueError,
                 "`discount` must be a finite number > 0 and <= 1; got 0.0", id="zero-discount"),
    pytest.param("hier_ts", {"personal_prior": float("nan")}, ValueError,
                 "`personal_prior` must be a finite number > 0; got nan", id="nan-personal-prior"),
    pytest.param("hier_ts", {"context": "yes"}, TypeError, "`context` must be true or false; got 'yes'",
                 id="string-switch"),
    pytest.param("hier_ts", {"prior_strength": "big"}, TypeError, "`prior_strength` must be a number; got 'big'",
                 id="string-strength"),
    pytest.param("static", {"playbook": {"retail": ["push", 19]}}, ValueError,
                 "`playbook` must name each industry of the catalog (retail, gaming); unknown: [], "
                 "missing: ['gaming']", id="playbook-missing-industry"),
    pytest.param("static", {"playbook": {**PLAYBOOK, "gaming": ["fax", 10]}}, ValueError,
                 "unknown channel 'fax'; known: email, push, sms", id="playbook-unknown-channel"),
    pytest.param("static", {"playbook": {**PLAYBOOK, "gaming": ["email", 24]}}, ValueError,
                 "`hour` must lie in [0, 23]; got 24", id="playbook-bad-hour"),
    pytest.param("static", {"playbook": {**PLAYBOOK, "gaming": "email"}}, ValueError,
                 "`playbook['gaming']` must be [channel, local hour]; got 'email'", id="playbook-bad-entry"),
    pytest.param("user_heuristic", {"prior_sends": -1}, ValueError,
                 "`prior_sends` must be a finite number >= 0; got -1", id="negative-prior-sends"),
    pytest.param("user_heuristic", {"click_outcome": "open"}, ValueError,
                 "unknown outcome 'open'; known: click, unsubscribe", id="unknown-click-outcome"),
    pytest.param("random", {"epsilon": 0.1}, TypeError, "unexpected keyword argument 'epsilon'",
                 id="random-has-no-epsilon"),
]


@pytest.mark.parametrize("name, params, err, msg", BAD_PARAMS)
def test_bad_parameters_are_rejected_clearly(name, params, err, msg):
    with pytest.raises(err, match=re.escape(msg)):
        make_policy(name, **params)


def test_bad_outcomes_are_rejected_clearly():
    policy = make_policy("hier_ts")
    bad = Outcomes(cell_idx=np.array([99]), arm=np.array([0]), outcome_idx=np.array([0]), successes=np.ones(1),
                   failures=np.zeros(1))
    with pytest.raises(ValueError, match=re.escape("`cell_idx` of outcomes must lie in [0, 8); got 99")):
        policy.update(bad)


def test_learning_benchmark_quick_mode_writes_its_json(tmp_path):
    out = tmp_path / "learning.json"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "learning.py"), "--quick", "--skip-seed-world",
                    "--json", str(out)], check=True, capture_output=True, text=True, timeout=600)
    result = json.loads(out.read_text())
    assert {"seed_world", "contextual_regret_50k", "contextual_regret_500k", "sim_decisions_per_s",
            "engine_decisions_per_s"} <= set(result)
    assert {"per_segment_ts", "random", "hier_ts"} <= set(result["contextual_regret_50k"])


@pytest.mark.parametrize("name", sorted(n for n in POLICIES if n != "random"))
def test_the_logged_propensity_is_the_probability_the_arm_was_drawn_with(name):
    policy = trained(name, n_rounds=2)
    batch = make_batch(77, n_rows=40)
    policy.reseed(123)
    choices = policy.decide(batch)
    policy.reseed(123)  # the same stream: the same bank of draws, so the very vector that was sampled from
    probs = policy.propensities(batch)
    rows = np.arange(batch.n_rows)
    assert choices.propensity.tobytes() == probs[rows, choices.arm].tobytes()
    assert (choices.support == (probs > 0).sum(axis=1)).all() and (choices.epsilon == policy.epsilon).all()
    assert (probs[rows, choices.arm] > 0).all()


def test_decisions_follow_the_logged_probabilities():
    policy = trained("hier_ts", n_rounds=2)
    batch = make_batch(5, n_rows=1)
    batch = DecisionBatch(np.repeat(batch.cell_idx, 4000), np.repeat(batch.cost_row_idx, 4000),
                          np.repeat(batch.mask, 4000, axis=0))
    policy.reseed(9)
    choices = policy.decide(batch)  # one bank for the whole batch: every row has the same vector
    assert np.unique(choices.propensity[choices.arm == choices.arm[0]]).size == 1
    policy.reseed(9)
    probs = policy.propensities(batch)[0]
    counts = np.bincount(choices.arm, minlength=CATALOG.n_arms)
    expected = 4000 * probs
    sigma = np.sqrt(4000 * probs * (1 - probs)) + 1e-12
    assert (np.abs(counts - expected) < 5 * sigma + 1).all()


def test_a_cold_egreedy_sends_when_sending_pays():
    mask = np.ones((2000, CATALOG.n_arms), dtype=bool)  # no message always allowed
    batch = make_batch(21, mask=mask)  # clicks ~ U(0, 0.2) at value 1, unsubscribes ~ U(0, 0.01) at −2
    cold = make_policy("egreedy").decide(batch).arm
    learned = trained("egreedy", n_rounds=4).decide(batch).arm
    for label, arm in (("cold", cold), ("after four batches", learned)):
        share = np.mean(arm == CATALOG.null_arm)
        assert share < 0.2, f"{label}: egreedy chose no message on {share:.0%} of rows (limit 20%)"


def test_egreedy_starts_from_an_informative_prior_when_given_one():
    shape = (CATALOG.n_cells, 2, CATALOG.n_arms)
    prior = (np.full(shape, 3.0), np.full(shape, 97.0))
    alpha, beta = make_policy("egreedy", prior=prior).posterior()
    np.testing.assert_allclose(alpha / (alpha + beta), 0.03, rtol=1e-3)  # prior floor aside


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_explored_rows_are_those_whose_arm_is_not_the_most_probable(data):
    n_rows, n_arms = data.draw(st.integers(1, 8)), data.draw(st.integers(1, 5))
    weights = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n_rows * n_arms,
                                          max_size=n_rows * n_arms))).reshape(n_rows, n_arms).astype(float)
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n_rows * n_arms,
                                       max_size=n_rows * n_arms))).reshape(n_rows, n_arms)
    top = data.draw(st.lists(st.integers(0, n_arms - 1), min_size=n_rows, max_size=n_rows))
    mask[np.arange(n_rows), top] = True
    weights[np.arange(n_rows), top] += 1.0  # every row has an allowed arm of positive weight (ties are common)
    exploit = np.where(mask, weights, 0.0)
    exploit /= exploit.sum(axis=1, keepdims=True)
    epsilon = data.draw(st.sampled_from([0.0, 0.3, 1.0]))
    choices = sample_choices(exploit, mask, epsilon, np.random.default_rng(data.draw(st.integers(0, 2**32))))
    rows = np.arange(n_rows)
    several = mask.sum(axis=1) > 1
    not_best = exploit[rows, choices.arm] < exploit.max(axis=1)
    if epsilon == 0.0:
        np.testing.assert_array_equal(choices.explored, not_best & several)
    elif epsilon == 1.0:
        np.testing.assert_array_equal(choices.explored, several)
    else:  # the uniform stage may also draw a most probable arm: explored then too
        assert (choices.explored >= (not_best & several)).all()
    assert not (choices.explored & ~several).any()
