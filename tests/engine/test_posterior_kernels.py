"""Deterministic posterior kernels (update, discount, pool_priors) against their numpy twins, exactly."""

import numpy as np
import numpy.testing as npt
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sendwise import engine
from sendwise.engine import reference

PROPERTY = settings(max_examples=60, deadline=None)  # deadline off: the first call loads or compiles kernels


def beta_params(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    return arrays(np.float64, shape, elements=st.floats(1e-3, 1e4))


def counts(shape: tuple[int, ...]) -> st.SearchStrategy[np.ndarray]:
    """Non-negative weights: integers (real counts) or fractions (discounted or attributed outcomes)."""
    return arrays(np.float64, shape, elements=st.one_of(st.integers(0, 50).map(float), st.floats(0.0, 50.0)))


@st.composite
def update_cases(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    shape = (draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 6)))
    n_events = draw(st.integers(0, 40))  # small shapes, so indices repeat often
    index = [draw(arrays(np.int64, n_events, elements=st.integers(0, n - 1))) for n in shape]
    return (draw(beta_params(shape)), draw(beta_params(shape)), *index, draw(counts((n_events,))),
            draw(counts((n_events,))))


@given(update_cases())
@PROPERTY
def test_update_matches_numpy_add_at(case: tuple[np.ndarray, ...]) -> None:
    alpha, beta, cell_idx, outcome_idx, arm_idx, successes, failures = case
    expected_alpha, expected_beta = reference.update(*case)
    engine.update(alpha, beta, cell_idx, outcome_idx, arm_idx, successes, failures)
    npt.assert_array_equal(alpha, expected_alpha)
    npt.assert_array_equal(beta, expected_beta)


@given(update_cases())
@PROPERTY
def test_update_conserves_counts(case: tuple[np.ndarray, ...]) -> None:
    alpha, beta, cell_idx, outcome_idx, arm_idx, successes, failures = case
    before = alpha.sum(), beta.sum()
    engine.update(alpha, beta, cell_idx, outcome_idx, arm_idx, successes, failures)
    npt.assert_allclose(alpha.sum() - before[0], successes.sum(), rtol=1e-12, atol=1e-9)
    npt.assert_allclose(beta.sum() - before[1], failures.sum(), rtol=1e-12, atol=1e-9)


def test_update_counts_every_repeat_of_a_triple() -> None:
    alpha, beta = np.ones((2, 1, 3)), np.ones((2, 1, 3))
    engine.update(alpha, beta, [1, 1, 1, 0], [0, 0, 0, 0], [2, 2, 2, 0], [1.0, 1.0, 0.5, 0.0], [0.0, 2.0, 0.0, 3.0])
    npt.assert_array_equal(alpha, [[[1, 1, 1]], [[1, 1, 3.5]]])
    npt.assert_array_equal(beta, [[[4, 1, 1]], [[1, 1, 3]]])


@st.composite
def discount_cases(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    shape = (draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 5)))
    return tuple(draw(beta_params(shape)) for _ in range(4))


@given(discount_cases(), st.floats(1e-6, 1.0), st.floats(0.0, 30.0))
@PROPERTY
def test_discount_matches_twin(case: tuple[np.ndarray, ...], factor: float, days: float) -> None:
    alpha, beta, prior_alpha, prior_beta = case
    expected_alpha, expected_beta = reference.discount(*case, factor, days)
    engine.discount(alpha, beta, prior_alpha, prior_beta, factor, days)
    npt.assert_array_equal(alpha, expected_alpha)
    npt.assert_array_equal(beta, expected_beta)


@given(discount_cases(), st.floats(1e-6, 1.0), st.floats(0.0, 30.0))
@PROPERTY
def test_discount_moves_every_parameter_towards_its_prior(case: tuple[np.ndarray, ...], factor: float,
                                                          days: float) -> None:
    alpha, beta, prior_alpha, prior_beta = case
    old = alpha.copy(), beta.copy()
    engine.discount(alpha, beta, prior_alpha, prior_beta, factor, days)
    for new, before, prior in zip((alpha, beta), old, (prior_alpha, prior_beta), strict=True):
        tol = 1e-12 * np.maximum(before, prior)
        assert np.all(new >= np.minimum(before, prior) - tol)
        assert np.all(new <= np.maximum(before, prior) + tol)


def test_discount_by_one_or_for_no_time_changes_nothing() -> None:
    alpha, beta = np.full((1, 1, 2), 7.0), np.full((1, 1, 2), 3.0)
    engine.discount(alpha, beta, np.ones_like(alpha), np.ones_like(beta), 1.0, days=5.0)
    engine.discount(alpha, beta, np.ones_like(alpha), np.ones_like(beta), 0.5, days=0.0)
    npt.assert_array_equal(alpha, 7.0)
    npt.assert_array_equal(beta, 3.0)


@st.composite
def hierarchies(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Cell counts and 0-2 nested levels above the cells: each fine group sits under one coarse group."""
    n_cells, n_outcomes, n_arms = draw(st.integers(1, 8)), draw(st.integers(1, 2)), draw(st.integers(1, 4))
    fine = draw(arrays(np.int64, n_cells, elements=st.integers(0, n_cells - 1)))
    coarse_of_fine = draw(arrays(np.int64, n_cells, elements=st.integers(0, min(2, n_cells - 1))))
    levels = [coarse_of_fine[fine], fine][: draw(st.integers(0, 2))]
    shape = (n_cells, n_outcomes, n_arms)
    return draw(counts(shape)), draw(counts(shape)), levels


@given(hierarchies(), st.floats(0.1, 100.0), st.floats(0.1, 10.0), st.floats(0.1, 10.0))
@PROPERTY
def test_pool_priors_matches_twin(case: tuple, strength: float, base_alpha: float, base_beta: float) -> None:
    successes, failures, levels = case
    pooled = engine.pool_priors(successes, failures, levels, strength, base_alpha, base_beta)
    expected = reference.pool_priors(successes, failures, levels, strength, base_alpha, base_beta)
    for name, got, want in zip(pooled._fields, pooled, expected, strict=True):
        npt.assert_allclose(got, want, rtol=1e-12, atol=0, err_msg=name)


@given(hierarchies(), st.floats(0.1, 100.0))
@PROPERTY
def test_pooled_prior_holds_strength_pseudo_counts_and_posterior_adds_own_counts(case: tuple,
                                                                                 strength: float) -> None:
    successes, failures, levels = case
    pooled = engine.pool_priors(successes, failures, levels, strength)
    npt.assert_allclose(pooled.prior_alpha + pooled.prior_beta, strength, rtol=1e-9)
    npt.assert_allclose(pooled.alpha - pooled.prior_alpha, successes, rtol=1e-9, atol=1e-9)
    npt.assert_allclose(pooled.beta - pooled.prior_beta, failures, rtol=1e-9, atol=1e-9)


def test_pool_priors_by_hand() -> None:
    """Two cells in one region, no data in the second: it starts at the region's mean, not at 1/2."""
    successes = np.array([[[8.0]], [[0.0]]])
    failures = np.array([[[2.0]], [[0.0]]])
    pooled = engine.pool_priors(successes, failures, [np.array([0, 0])], strength=10.0)
    global_mean = (1 + 8) / (1 + 8 + 1 + 2)  # Beta(1, 1) plus all counts
    region_alpha = 10 * global_mean + 8
    region_mean = region_alpha / (region_alpha + 10 * (1 - global_mean) + 2)
    npt.assert_allclose(pooled.prior_alpha[:, 0, 0], [10 * region_mean] * 2, rtol=1e-12)
    npt.assert_allclose(pooled.alpha[:, 0, 0], [10 * region_mean + 8, 10 * region_mean], rtol=1e-12)
    npt.assert_allclose(pooled.beta[:, 0, 0], [10 * (1 - region_mean) + 2, 10 * (1 - region_mean)], rtol=1e-12)
