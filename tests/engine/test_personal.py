"""Personalised decisions and hierarchical pooling: kernels against their plain-numpy twins."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise import engine
from sendwise.engine import personal_reference as ref

N_HOURS_SMALL = 4


def _problem(seed: int, n_rows: int, n_cells: int = 3, n_channels: int = 2, n_customers: int = 7):
    """A random decision problem with a no-message arm, n_channels × N_HOURS_SMALL arms, two outcomes."""
    rng = np.random.default_rng(seed)
    n_arms = n_channels * N_HOURS_SMALL + 1
    alpha, beta = rng.uniform(0.5, 5, (n_cells, 2, n_arms)), rng.uniform(0.5, 50, (n_cells, 2, n_arms))
    cost = rng.uniform(0, 0.05, (2, n_arms))
    cost[:, -1] = 0.0
    mask = rng.random((n_rows, n_arms)) < 0.5
    mask[np.arange(n_rows), rng.integers(0, n_arms, n_rows)] = True
    rows = {"cell_idx": rng.integers(0, n_cells, n_rows), "cost_row_idx": rng.integers(0, 2, n_rows),
            "null_arm": n_arms - 1}
    arm_channel = np.append(np.repeat(np.arange(n_channels), N_HOURS_SMALL), -1)
    counts = (rng.integers(0, 5, (n_customers, 2, n_channels)).astype(float),
              rng.integers(0, 20, (n_customers, 2, n_channels)).astype(float))
    customers = rng.integers(0, n_customers, n_rows)
    return (alpha, beta, np.array([1.0, -0.5]), cost, mask), rows, arm_channel, counts, customers


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n_rows=st.integers(1, 40), weight=st.floats(0, 3),
       epsilon=st.sampled_from([0.0, 0.1, 1.0]), chunk_size=st.integers(1, 16))
def test_decide_personal_equals_decide_batch_on_row_posteriors(seed, n_rows, weight, epsilon, chunk_size):
    problem, rows, arm_channel, counts, customers = _problem(seed, n_rows)
    personal = engine.PersonalCounts(*counts, arm_channel, weight)
    got = engine.decide_personal(*problem, personal, customers, epsilon=epsilon, rng=seed, chunk_size=chunk_size,
                                 **rows)
    row_alpha, row_beta = ref.personal_posteriors(problem[0], problem[1], rows["cell_idx"], customers,
                                                  tuple(personal))
    want = engine.decide_batch(row_alpha, row_beta, *problem[2:], cell_idx=np.arange(n_rows),
                               cost_row_idx=rows["cost_row_idx"], null_arm=rows["null_arm"], epsilon=epsilon,
                               rng=seed, chunk_size=chunk_size)
    np.testing.assert_array_equal(got.arm, want.arm)
    np.testing.assert_array_equal(got.score, want.score)
    np.testing.assert_array_equal(got.explored, want.explored)
    assert problem[4][np.arange(n_rows), got.arm].all()


def test_zero_weight_gives_the_cell_decisions():
    problem, rows, arm_channel, counts, customers = _problem(3, 50)
    personal = engine.PersonalCounts(*counts, arm_channel, 0.0)
    got = engine.decide_personal(*problem, personal, customers, rng=5, **rows)
    want = engine.decide_batch(*problem, rng=5, **rows)
    np.testing.assert_array_equal(got.arm, want.arm)


def test_personal_propensities_equal_cell_propensities_on_row_posteriors():
    problem, rows, arm_channel, counts, customers = _problem(11, 12)
    personal = engine.PersonalCounts(*counts, arm_channel, 1.5)
    got = engine.personal_choice_probabilities(*problem, personal, customers, n_draws=40, epsilon=0.1, rng=2,
                                               chunk_size=5, **rows)
    row_alpha, row_beta = ref.personal_posteriors(problem[0], problem[1], rows["cell_idx"], customers,
                                                  tuple(personal))
    want = engine.choice_probabilities(row_alpha, row_beta, *problem[2:], cell_idx=np.arange(12), n_draws=40,
                                       cost_row_idx=rows["cost_row_idx"], null_arm=rows["null_arm"], epsilon=0.1,
                                       rng=2, chunk_size=5)
    np.testing.assert_allclose(got, want)
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    assert (got[~problem[4]] == 0).all()


def _levels(draw_seed: int, n_cells: int) -> list[np.ndarray]:
    """Two nested random levels over ``n_cells`` cells (coarsest first)."""
    rng = np.random.default_rng(draw_seed)
    fine = np.sort(rng.integers(0, max(1, n_cells // 2), n_cells))
    fine = np.unique(fine, return_inverse=True)[1]
    coarse = fine // 2
    return [coarse, fine]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n_cells=st.integers(1, 9), strength=st.floats(0.5, 500))
def test_pool_posteriors_matches_twin(seed, n_cells, strength):
    rng = np.random.default_rng(seed)
    successes = rng.integers(0, 20, (n_cells, 2, 5)).astype(float) * (rng.random((n_cells, 1, 1)) < 0.7)
    failures = rng.integers(0, 200, (n_cells, 2, 5)).astype(float) * (rng.random((n_cells, 1, 1)) < 0.7)
    levels = _levels(seed, n_cells)
    got = engine.pool_posteriors(successes, failures, levels, strength)
    want = ref.pool_posteriors(successes, failures, levels, strength)
    np.testing.assert_allclose(got.alpha, want[0], rtol=1e-12)
    np.testing.assert_allclose(got.beta, want[1], rtol=1e-12)
    np.testing.assert_allclose(got.prior_alpha + successes, got.alpha)


def test_pool_posteriors_cold_start_is_beta_one_one_and_empty_cells_take_their_parents_mean():
    zeros = np.zeros((4, 1, 3))
    cold = engine.pool_posteriors(zeros, zeros, [np.array([0, 0, 1, 1])], 50.0)
    np.testing.assert_allclose(cold.alpha, 1.0)
    np.testing.assert_allclose(cold.beta, 1.0)
    successes, failures = zeros.copy(), zeros.copy()
    successes[0], failures[0] = 30.0, 270.0  # only cell 0 (group 0) has data
    pooled = engine.pool_posteriors(successes, failures, [np.array([0, 0, 1, 1])], 50.0)
    mean = pooled.alpha / (pooled.alpha + pooled.beta)
    group_mean = ref.pooled_posterior([successes.sum(0)[0], successes[:2].sum(0)[0]],
                                      [failures.sum(0)[0], failures[:2].sum(0)[0]], 50.0)
    np.testing.assert_allclose(mean[1, 0], group_mean[0] / (group_mean[0] + group_mean[1]))
    np.testing.assert_allclose(pooled.alpha[1] + pooled.beta[1], 50.0)  # lends no more than `strength`


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), strength=st.floats(1, 200), sharpness=st.floats(0.5, 10))
def test_hier_bernoulli_steps_matches_twin(seed, strength, sharpness):
    rng = np.random.default_rng(seed)
    true_rates = rng.uniform(0.01, 0.3, (6, 8))
    stream = (rng.integers(0, 6, 300), rng.random(300))
    levels = [np.array([0, 0, 0, 1, 1, 1])]
    got = engine.hier_bernoulli_steps(levels, *stream, true_rates, strength=strength, sharpness=sharpness, rng=seed)
    cell_groups = np.array([[0, 1 + c // 3, 3 + c] for c in range(6)])
    want = ref.hier_bernoulli_steps(cell_groups, 9, stream, true_rates, (strength, sharpness),
                                    engine.chunk_generators(seed, 1)[0])
    np.testing.assert_array_equal(got, want)


def test_hier_bernoulli_steps_learns_the_best_arm():
    true_rates = np.tile(np.array([0.02, 0.02, 0.3, 0.02]), (2, 1))
    rng = np.random.default_rng(0)
    arms = engine.hier_bernoulli_steps([], rng.integers(0, 2, 3000), rng.random(3000), true_rates,
                                       strength=20.0, sharpness=2.0, rng=1)
    assert (arms[-1000:] == 2).mean() > 0.9


def _personal(**overrides):
    problem, rows, arm_channel, counts, customers = _problem(0, 5)
    fields = {"successes": counts[0], "failures": counts[1], "arm_channel": arm_channel, "weight": 1.0}
    return problem, rows, engine.PersonalCounts(**{**fields, **overrides}), customers


BAD_PERSONAL = [
    pytest.param({"weight": -1.0}, None, ValueError, "`personal.weight` must be a finite number >= 0; got -1.0",
                 id="negative-weight"),
    pytest.param({"weight": float("nan")}, None, ValueError, "`personal.weight` must be a finite number >= 0",
                 id="nan-weight"),
    pytest.param({"arm_channel": np.zeros(3, np.int64)}, None, ValueError,
                 "`personal.arm_channel` must have shape (9,); got (3,)", id="short-arm-channel"),
    pytest.param({"arm_channel": np.full(9, 5)}, None, ValueError,
                 "`personal.arm_channel` must lie in [-1, 2); got personal.arm_channel[0] = 5", id="unknown-channel"),
    pytest.param({"failures": np.zeros((7, 2, 3))}, None, ValueError,
                 "`personal.failures` must have shape (7, 2, 2); got (7, 2, 3)", id="mismatched-failures"),
    pytest.param({"successes": -np.ones((7, 2, 2))}, None, ValueError, "`personal.successes` must be >= 0",
                 id="negative-counts"),
    pytest.param({}, np.array([0, 1, 2, 3, 99]), ValueError, "`customer_idx` must lie in [0, 7)",
                 id="unknown-customer"),
    pytest.param({}, np.array([0, 1]), ValueError, "`customer_idx` must have shape (5,); got (2,)",
                 id="short-customers"),
]


@pytest.mark.parametrize("overrides, customers, err, msg", BAD_PERSONAL)
def test_decide_personal_rejects_bad_input(overrides, customers, err, msg):
    problem, rows, personal, default_customers = _personal(**overrides)
    with pytest.raises(err, match=re.escape(msg)):
        engine.decide_personal(*problem, personal, default_customers if customers is None else customers, **rows)


def test_decide_personal_needs_personal_counts():
    problem, rows, personal, customers = _personal()
    with pytest.raises(TypeError, match=re.escape("`personal` must be a PersonalCounts; got tuple")):
        engine.decide_personal(*problem, tuple(personal), customers, **rows)


@pytest.mark.parametrize("kwargs, msg", [
    ({"strength": 0.0}, "`strength` must be a finite number > 0; got 0.0"),
    ({"strength": 5.0, "sharpness": float("inf")}, "`sharpness` must be a finite number > 0; got inf"),
])
def test_hier_bernoulli_steps_rejects_bad_pooling(kwargs, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        engine.hier_bernoulli_steps([], np.zeros(3, np.int64), np.zeros(3), np.full((1, 2), 0.1), **kwargs)


def test_pooling_rejects_levels_that_do_not_nest():
    counts = np.zeros((4, 1, 2))
    with pytest.raises(ValueError, match="nested"):
        engine.pool_posteriors(counts, counts, [np.array([0, 0, 1, 1]), np.array([0, 1, 1, 2])], 5.0)
