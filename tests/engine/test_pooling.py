"""Hierarchical pooling and hierarchical steps: kernels against their plain-numpy twins."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise import engine
from sendwise.engine import reference as ref


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
    np.testing.assert_allclose(got.alpha, want.alpha, rtol=1e-12)
    np.testing.assert_allclose(got.beta, want.beta, rtol=1e-12)
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
    want = ref.hier_bernoulli_steps(levels, *stream, true_rates, strength=strength, sharpness=sharpness, rng=seed)
    np.testing.assert_array_equal(got, want)


def test_hier_bernoulli_steps_learns_the_best_arm():
    true_rates = np.tile(np.array([0.02, 0.02, 0.3, 0.02]), (2, 1))
    rng = np.random.default_rng(0)
    arms = engine.hier_bernoulli_steps([], rng.integers(0, 2, 3000), rng.random(3000), true_rates,
                                       strength=20.0, sharpness=2.0, rng=1)
    assert (arms[-1000:] == 2).mean() > 0.9


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


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), n_cells=st.integers(1, 9), strength=st.floats(0.5, 500), data=st.data())
def test_pooling_some_cells_from_kept_level_sums_gives_those_cells_of_the_full_pool(seed, n_cells, strength, data):
    rng = np.random.default_rng(seed)
    successes = rng.random((n_cells, 2, 5)) * 20
    failures = rng.random((n_cells, 2, 5)) * 200
    levels = _levels(seed, n_cells)
    cells = np.array(data.draw(st.lists(st.integers(0, n_cells - 1), max_size=12)), dtype=np.int64)
    full = engine.pool_posteriors(successes, failures, levels, strength)
    some = engine.pool_cells(engine.stack_counts(successes, failures, levels), strength, cells)
    assert some.alpha.tobytes() == full.alpha[cells].tobytes() and some.beta.tobytes() == full.beta[cells].tobytes()


def test_pool_cells_names_a_cell_out_of_range():
    stacked = engine.stack_counts(np.zeros((2, 1, 3)), np.zeros((2, 1, 3)), [np.array([0, 1])])
    with pytest.raises(ValueError, match=re.escape("`cells` must lie in [0, 2); 1 of 1 values do not")):
        engine.pool_cells(stacked, 10.0, np.array([2]))
