"""The deterministic update kernel against its numpy twin, exactly."""

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
    expected_alpha, expected_beta = alpha.copy(), beta.copy()
    reference.update(expected_alpha, expected_beta, cell_idx, outcome_idx, arm_idx, successes, failures)
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
